"""policytag.analysis.targets: numerals, extraction rules, and the measured precision / recall."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from policytag.analysis.inputs import gold_rows
from policytag.analysis.numerals import is_idiomatic, parse_number
from policytag.analysis.target_eval import evaluate, indicators_overlap, load_fixture
from policytag.analysis.targets import Target, extract_targets, targets_from_rows, targets_table
from policytag.analysis.targets_export import write_targets_xlsx
from policytag.cli.main import app

FIXTURE = Path(__file__).parent / "fixtures" / "targets_gold.jsonl"


@pytest.mark.parametrize("text, value", [
    ("三百五十", 350), ("十五", 15), ("两万", 20000), ("两万三千", 23000), ("一千二百", 1200), ("一百零五", 105),
    ("十万", 100000), ("一亿二千万", 120_000_000), ("二〇三五", 2035), ("百分之十五", 15), ("1.2万", 12000),
    ("1,200", 1200), ("1.5亿", 150_000_000), ("3千", 3000), ("６０", 60), ("一点五", 1.5),
])
def test_parse_number(text, value):
    assert parse_number(text) == pytest.approx(value)


def test_idioms_are_not_numbers():
    assert is_idiomatic("万") and is_idiomatic("百万") and is_idiomatic("千")
    assert not is_idiomatic("十万") and not is_idiomatic("一百")
    with pytest.raises(ValueError):
        parse_number("科普")


def one(text: str, **kw) -> Target:
    ts = extract_targets(text, **kw)
    assert len(ts) == 1, [t.to_dict() for t in ts]
    return ts[0]


def test_quantity_unit_indicator_comparator_deadline():
    t = one("到2025年，建设省级科普基地350家以上。")
    assert (t.quantity, t.unit, t.indicator, t.comparator, t.deadline, t.text) == (350, "家", "省级科普基地", ">=", "2025",
                                                                                  "350家以上")
    t = one("公民具备科学素质的比例力争达到23%。")
    assert (t.quantity, t.unit, t.indicator, t.comparator) == (23, "%", "公民具备科学素质的比例", "=")
    t = one("每年培训科技辅导员200人次以上。")
    assert (t.quantity, t.unit, t.indicator, t.period) == (200, "人次", "科技辅导员", "每年")
    t = one("“十四五”期间，创建市级以上科普教育基地30家以上。")
    assert t.deadline == "十四五" and t.indicator == "市级以上科普教育基地"
    t = one("各级政府每年安排不少于1000万元科普经费。")
    assert (t.quantity, t.unit, t.indicator, t.comparator) == (10_000_000, "元", "科普经费", ">=")
    t = one("2025年底前，设立科普专项资金1.5亿元。")
    assert (t.quantity, t.unit, t.deadline) == (150_000_000, "元", "2025")
    t = one("建成10个以上科普示范县。")
    assert (t.quantity, t.unit, t.indicator) == (10, "个", "科普示范县")
    t = one("每年举办科普讲座不少于12场。")
    assert (t.quantity, t.unit, t.comparator, t.period) == (12, "场", ">=", "每年")


def test_chinese_numerals_and_ranges():
    t = one("建设三百五十家省级科普基地。")
    assert (t.quantity, t.unit, t.indicator) == (350, "家", "省级科普基地")
    t = one("科普经费占比达到百分之十五。")
    assert (t.quantity, t.unit, t.indicator) == (15, "%", "科普经费占比")
    t = one("每年培训两万名农民。")
    assert (t.quantity, t.unit, t.indicator, t.period) == (20000, "名", "农民", "每年")
    t = one("累计服务1.2万人次。")
    assert (t.quantity, t.unit) == (12000, "人次")
    t = one("各基地选派2-3名优秀讲解员参赛。")
    assert (t.quantity, t.quantity_max, t.unit) == (2, 3, "名")
    t = one("举办4至5期科技讲座。")
    assert (t.quantity, t.quantity_max, t.indicator) == (4, 5, "科技讲座")
    t = one("到2025年，全市人才总量达60万人。")
    assert (t.quantity, t.unit, t.indicator) == (600_000, "人", "人才总量")


@pytest.mark.parametrize("text", [
    "第十条 县级以上人民政府应当加强科普工作。",             # article number
    "根据财关税〔2021〕26号文件执行。",                      # document number
    "按照《全民科学素质行动规划纲要(2021—2035年)》要求。",   # title with years
    "1.完善协同联动机制。",                                 # list marker
    "(二)健全区县工作体系。",
    "活动时间：2022年8月26日9:00-13:00。",                  # dates and times
    "本届大赛分为报名、预赛、复赛、决赛四个阶段。",          # structure
    "实施5项提升行动和4项重点工程。",
    "欢迎年龄16周岁以上的爱好者参赛。",                      # age
    "深入贯彻党的十九大和十九届二中、三中全会精神。",         # congress ordinals
    "打造科普文化进万家、千会千人进千户等活动。",             # idioms in names
    "实施“千会帮千村计划”。",
    "搭建5G网络、大数据等数字化平台。",
    "建设一个国际化科普交流平台。",                          # indefinite article
    "截至2019年5月底，已累计配发约420套展览资源。",          # statistics of the past
    "组建了一支108人科普队伍。",
    "联系电话：3134362",
    "科技志愿者每服务1小时积1分。",                          # rate
])
def test_not_targets(text):
    assert extract_targets(text) == [], [t.to_dict() for t in extract_targets(text)]


def test_baseline_year_depends_on_document_year():
    text = "2020年，全省公民具备科学素质的比例达到11.47%。"
    assert extract_targets(text, doc_year=2021) == []
    goal = "2025年，建设省级科普基地350家以上。"
    assert one(goal, doc_year=2023).deadline == "2025"
    # the baseline of a "from … to …" target is not a target, the goal is
    t = one("到2025年，全省公民具备科学素质的比例从目前11.47%提升至16%。", doc_year=2021)
    assert (t.quantity, t.indicator, t.deadline) == (16, "公民具备科学素质的比例", "2025")


def test_deadline_from_context_and_row_fields():
    row = {"doc_id": "x-2023", "clause_id": "x-2023/1#2", "text": "建设科普基地30家以上。",
           "context": "一、发展目标 > 到2027年主要目标", "themes": ["infrastructure"], "measures": ["goal_planning"]}
    t = one(row)
    assert (t.doc_id, t.clause_id, t.deadline, t.themes, t.measures) == ("x-2023", "x-2023/1#2", "2027",
                                                                       ["infrastructure"], ["goal_planning"])
    assert row["text"][t.span[0]:t.span[1]] == t.text


def test_target_json_roundtrip():
    t = one("到2025年，建设省级科普基地350家以上。")
    d = json.loads(json.dumps(t.to_dict(), ensure_ascii=False))
    assert Target.from_dict(d) == t


def test_indicator_overlap_rule():
    assert indicators_overlap("省级科普基地", "科普基地")
    assert not indicators_overlap("科普基地", "科普人才")
    assert not indicators_overlap("", "科普基地")


def test_fixture_is_large_enough_with_negatives_and_heldout():
    rows = load_fixture(FIXTURE)
    assert len(rows) >= 80
    assert sum(1 for r in rows if not r["targets"]) >= 30
    held = [r for r in rows if r["split"] == "heldout"]
    assert len(held) >= 30 and sum(len(r["targets"]) for r in held) >= 10
    assert not {r["doc_id"] for r in held} & {r["doc_id"] for r in rows if r["split"] == "dev"}


@pytest.mark.parametrize("split", [None, "heldout"])
def test_precision_and_recall_on_the_fixture(split):
    res = evaluate(load_fixture(FIXTURE), split)
    assert res.precision >= 0.9, res.false_positives
    assert res.recall >= 0.8, res.false_negatives


def test_gold_documents_table_and_xlsx(tmp_path):
    rows = gold_rows(["kunshan-2023", "sichuan-2023"])
    targets = targets_from_rows(rows)
    df = targets_table(targets, rows)
    assert len(df) == len(targets) >= 15
    kb = df[(df.doc_id == "kunshan-2023") & (df.indicator == "市级以上科普教育基地")].iloc[0]
    assert (kb.quantity, kb.unit, kb.deadline, kb.themes) == (30, "家", "十四五", "科普基础设施")
    path = write_targets_xlsx(targets, tmp_path / "t.xlsx", rows)
    ws = load_workbook(path)["目标"]
    assert [c.value for c in ws[1]][:4] == ["文档", "条款编号", "指标", "数量"] and ws.freeze_panes == "A2"


def test_cli_targets_gold(tmp_path):
    out = tmp_path / "t.jsonl"
    res = CliRunner().invoke(app, ["targets", "sichuan-2023", "--gold", "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {"省级科普基地", "天府科普使者"} <= {r["indicator"] for r in recs}
