"""Segmentation: numbering styles, sentences, agencies, ids, and the five seed documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policytag.text.ingestion import document_from_text, load_document
from policytag.text.segmentation import (
    cn_to_int,
    match_numbering,
    segment,
    segment_file,
    split_agencies,
    split_sentences,
)

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = sorted(FIXTURES.glob("*.txt"))


def seg(text: str, doc_id: str = "d"):
    return segment((doc_id, text))


def ids(clauses):
    return [c.clause_id for c in clauses]


# --------------------------------------------------------------------------- numbering styles

@pytest.mark.parametrize("s, n", [("一", 1), ("十", 10), ("十一", 11), ("二十", 20), ("二十三", 23),
                                  ("一百零五", 105), ("12", 12), ("两", 2)])
def test_cn_to_int(s, n):
    assert cn_to_int(s) == n


@pytest.mark.parametrize("line, style, number", [
    ("一、前言", "cn", 1),
    ("十二、保障措施", "cn", 12),
    ("(一)指导思想", "paren_cn", 1),
    ("（十一）开展科普交流", "paren_cn", 11),
    ("1.加强校内青少年科学教育。", "arabic", 1),
    ("2、完善机制", "arabic", 2),
    ("(1)科技馆", "paren_arabic", 1),
    ("（3）科普基地", "paren_arabic", 3),
    ("第一章 总则", "chapter", 1),
    ("第二节 科普基地", "section", 2),
    ("第十五条 本办法自发布之日起施行。", "article", 15),
    ("③开展活动", "circled", 3),
    ("### (三)实施科普基础设施工程。", "paren_cn", 3),
    ("## 附录", "md", 0),
])
def test_match_numbering_styles(line, style, number):
    m = match_numbering(line)
    assert m is not None and (m.style, m.number) == (style, number)


@pytest.mark.parametrize("line", ["一流学会必须要有一流科普。", "16.7%的比例", "2025年，全市", "十四五期间",
                                  "(2021—2035年)规划", "一、", "科学素质是基础。"])
def test_match_numbering_rejects_body_text(line):
    assert match_numbering(line) is None


def test_hierarchy_cn_paren_arabic_paren():
    text = "一、总体要求\n(一)主要目标\n1.提高素质。全面提升。\n(1)青少年。\n(2)农民。\n2.建设基地。\n(二)基本原则\n二、任务\n坚持创新。"
    cl = seg(text)
    assert ids(cl) == ["d/1.1.1#1", "d/1.1.1#2", "d/1.1.1.1#1", "d/1.1.1.2#1", "d/1.1.2#1", "d/1.2#1", "d/2.p1#1"]
    by = {c.clause_id: c for c in cl}
    assert by["d/1.1.1#2"].context == "一、总体要求 > (一)主要目标 > 1.提高素质"
    assert by["d/1.1.1.1#1"].context == "一、总体要求 > (一)主要目标 > 1.提高素质"
    # a heading with nothing under it is a provision of its own
    assert by["d/1.2#1"].text == "(二)基本原则" and by["d/1.2#1"].context == "一、总体要求"


def test_fullwidth_parens_and_arabic_comma():
    cl = seg("一、任务\n（一）加强教育。开展活动。\n1、建设场馆。\n（1）科技馆建设。")
    assert ids(cl) == ["d/1.1#1", "d/1.1#2", "d/1.1.1#1", "d/1.1.1.1#1"]


def test_chapters_and_articles():
    text = "第一章 总则\n第一条 为了加强科普工作，制定本办法。\n第二条 本办法所称科普基地是指向公众开放的场所。\n" \
           "第二章 科普基地\n第三条 科普基地应当具备下列条件：\n（一）有固定场所；\n（二）有专职人员。"
    cl = seg(text)
    assert ids(cl) == ["d/1.1#1", "d/1.2#1", "d/2.3#1", "d/2.3.1#1", "d/2.3.2#1"]
    assert cl[2].text == "第三条 科普基地应当具备下列条件："  # a lead-in sentence is a clause
    assert cl[0].context == "第一章 总则"
    assert cl[3].context == "第二章 科普基地 > 第三条 科普基地应当具备下列条件"


def test_article_first_sentence_is_not_an_inline_title():
    cl = seg("第二条 本法适用于普及科学技术知识的活动。开展科普应当采取公众易于理解的方式。")
    assert [c.context for c in cl] == ["", ""]


def test_markdown_headings_levels_from_numbering():
    text = "### (三)实施科普基础设施工程。\n加强科普基础设施建设。\n加强基地建设。完善管理。\n## 五、组织实施\n### (一)组织保障。\n1.完善机制。建立协调机制。"
    cl = seg(text)
    assert ids(cl) == ["d/3.p1#1", "d/3.p2#1", "d/3.p2#2", "d/5.1.1#1", "d/5.1.1#2"]
    assert cl[0].context == "(三)实施科普基础设施工程"
    assert cl[2].context == "(三)实施科普基础设施工程 > 加强基地建设"
    assert cl[4].context == "五、组织实施 > (一)组织保障 > 1.完善机制"


def test_unnumbered_markdown_headings():
    cl = seg("# 文件标题\n## 背景\n科学素质是基础。\n## 任务\n开展活动。")
    assert ids(cl) == ["d/h1.p1#1", "d/h2.p1#1"]
    assert cl[0].context == "背景"


def test_unnumbered_paragraphs_get_stable_ids():
    text = "为贯彻落实纲要，制定本方案。\n一、前言\n第一段。\n第二段，有内容。\n第三段。"
    cl = seg(text)
    assert ids(cl) == ["d/p1#1", "d/1.p1#1", "d/1.p2#1", "d/1.p3#1"]


def test_title_lines_skipped_then_plain_subheadings_are_context():
    text = "关于印发方案的通知\n方案标题\n为贯彻落实纲要，制定本方案。\n一、任务\n青少年工作\n开展科技节。"
    cl = seg(text)
    assert [c.text for c in cl] == ["为贯彻落实纲要，制定本方案。", "开展科技节。"]
    assert cl[1].context == "一、任务 > 青少年工作"
    assert cl[1].clause_id == "d/1.p1#1"


def test_inline_title_is_its_own_clause_and_context():
    cl = seg("三、行动\n(四)老年人\n1.提高老年人信息素养。开展培训。普及知识。")
    assert [c.text for c in cl] == ["1.提高老年人信息素养。", "开展培训。", "普及知识。"]
    assert cl[0].context == "三、行动 > (四)老年人"
    assert cl[1].context == "三、行动 > (四)老年人 > 1.提高老年人信息素养"


def test_standalone_inline_title_line_with_body_paragraph():
    cl = seg("二、加强能力\n(二)加大科普设施保障力度。\n加强统筹规划。鼓励建设科技馆。")
    assert ids(cl) == ["d/2.2#1", "d/2.2#2", "d/2.2#3"]
    assert cl[0].text == "(二)加大科普设施保障力度。"
    assert cl[2].context == "二、加强能力 > (二)加大科普设施保障力度"


def test_pasted_phrase_without_structure_is_not_dropped():
    cl = seg("开展农民科技培训")
    assert [c.text for c in cl] == ["开展农民科技培训"] and cl[0].clause_id == "d/p1#1"


def test_duplicate_numbering_gets_unique_ids():
    cl = seg("一、任务\n1.第一项。\n1.又一个第一项。")
    assert ids(cl) == ["d/1.1#1", "d/1.1_2#1"]


# --------------------------------------------------------------------------- sentences

def test_split_sentences_basic_and_closers():
    text = "第一句。第二句！第三句？“引号。”后面。"
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == ["第一句。", "第二句！", "第三句？", "“引号。”后面。"]


def test_split_sentences_not_inside_quotes_or_brackets():
    text = "总书记强调“要把科学普及放在重要位置。没有全民科学素质普遍提高就难。”这一指示是遵循。加强（含培训。）建设。"
    parts = [text[a:b] for a, b in split_sentences(text)]
    assert parts == ["总书记强调“要把科学普及放在重要位置。没有全民科学素质普遍提高就难。”这一指示是遵循。", "加强（含培训。）建设。"]


def test_split_sentences_semicolon_complete_statements():
    text = "支持科研人员开展科普创作，加大人才培养；发挥科技社团作用，鼓励开展创作。"
    parts = [text[a:b] for a, b in split_sentences(text)]
    assert parts == ["支持科研人员开展科普创作，加大人才培养；", "发挥科技社团作用，鼓励开展创作。"]


def test_split_sentences_semicolon_list_after_colon_or_short_items_kept():
    t1 = "主要表现在：总体水平与发达国家仍有较大差距；体制机制和保障条件不够完善。"
    assert len(split_sentences(t1)) == 1
    t2 = "有固定场所；有专职人员；有经费。"
    assert len(split_sentences(t2)) == 1


def test_split_sentences_spans_are_stripped_offsets():
    text = "xx 第一句。 第二句。"
    assert [text[a:b] for a, b in split_sentences(text, 3)] == ["第一句。", "第二句。"]


# --------------------------------------------------------------------------- agencies

def test_split_agencies():
    assert split_agencies("市教育局、市科协等，各区镇") == ["市教育局", "市科协", "各区镇"]
    assert split_agencies("市委宣传部(市文明办)、市民政局,市科协") == ["市委宣传部(市文明办)", "市民政局", "市科协"]
    assert split_agencies("省科技厅，省科普工作联席会议成员单位") == ["省科技厅", "省科普工作联席会议成员单位"]


def test_agency_note_removed_from_clause_text():
    cl = seg("一、任务\n1.加强教育。开展活动。(责任单位:市教育局、市人社局、团市委、市科协等,各区镇)")
    assert [c.text for c in cl] == ["1.加强教育。", "开展活动。"]
    assert all(c.agencies == ["市教育局", "市人社局", "团市委", "市科协", "各区镇"] for c in cl)


def test_agency_note_fullwidth_and_nested_parens():
    cl = seg("（一）加强宣传。（责任部门：市委宣传部（市文明办）、市民政局）")
    assert cl[0].text == "（一）加强宣传。" and cl[0].agencies == ["市委宣传部（市文明办）", "市民政局"]


def test_agency_line_attaches_to_preceding_provision():
    cl = seg("一、任务\n1.加强教育。开展活动。\n牵头单位：市教育局；配合单位：市科协\n2.建设基地。")
    assert cl[0].agencies == ["市教育局", "市科协"] and cl[1].agencies == ["市教育局", "市科协"]
    assert cl[2].agencies == []
    assert all("牵头单位" not in c.text for c in cl)


# --------------------------------------------------------------------------- the five seed documents

@pytest.fixture(scope="module")
def seeds():
    out = {}
    for path in SEEDS:
        doc, clauses = segment_file(path)
        out[doc.doc_id] = (doc, clauses)
    return out


def test_five_seeds_present(seeds):
    assert set(seeds) == {"cast-2021", "chongqing-kxsz-shishi-newspaper", "jiangxi-2023", "kunshan-2023", "sichuan-2023"}


def test_round_trip_spans_point_at_clause_text(seeds):
    for doc, clauses in seeds.values():
        assert clauses
        for c in clauses:
            a, b = c.span
            assert doc.text[a:b] == c.text, c.clause_id
        assert len({c.clause_id for c in clauses}) == len(clauses)
        starts = [c.span[0] for c in clauses]
        assert starts == sorted(starts)


FURNITURE = re.compile(
    r"首页|当前位置|扫一扫|【字体|访问量|索引号|发布机构|上接|下转|代章|此件公开发布|相关信息|附件[:：]|"
    r"^[^。]{0,20}[〔【]20\d\d[〕】]\d+号$|^\d{4}年\d{1,2}月\d{1,2}日$|责任单位|责任部门|欢迎进入"
)


def test_no_furniture_in_any_clause(seeds):
    for doc, clauses in seeds.values():
        for c in clauses:
            assert not FURNITURE.search(c.text), (c.clause_id, c.text)
            assert not c.text.rstrip("。").endswith("：")  # addressee lines are not clauses
            assert "###" not in c.text


def test_kunshan_five_actions_with_items_under_right_headings(seeds):
    doc, clauses = seeds["kunshan-2023"]
    actions = [c for c in clauses if c.context.startswith("三、五项重点提升行动")]
    sections = sorted({c.context.split(" > ")[1] for c in actions})
    assert sections == [
        "(一)实施青少年科学素质提升行动",
        "(三)实施产业工人科学素质提升行动",
        "(二)实施农民科学素质提升行动",
        "(五)实施领导干部和公务员科学素质提升行动",
        "(四)实施老年人科学素质提升行动",
    ]
    items = {c.provision_id for c in actions}
    assert items == {f"kunshan-2023/3.{s}.{i}" for s, n in [(1, 4), (2, 3), (3, 4), (4, 3), (5, 3)] for i in range(1, n + 1)}
    by = {c.clause_id: c for c in clauses}
    c = by["kunshan-2023/3.4.1#2"]  # the example of LABELING.md section 5
    assert c.context == "三、五项重点提升行动 > (四)实施老年人科学素质提升行动 > 1.提高老年人信息素养"
    assert c.text.startswith("按照个体互助与组织推进相结合") and "开展老年人智能手机运用培训、竞赛等活动" in c.text
    assert c.agencies == ["市发改委", "市民政局", "市科技局", "市工信局", "市科协", "各区镇"]
    assert by["kunshan-2023/3.4.1#1"].text == "1.提高老年人信息素养。"
    # the cover letter and the preamble are paragraphs; title lines are not clauses
    assert by["kunshan-2023/p2#1"].text.startswith("为贯彻落实党中央")
    assert not any(c.text.startswith("关于印发") for c in clauses)
    assert by["kunshan-2023/5.2.p1#3"].text == "加强科普法制宣传，将科普人才列入各级各类人才奖励和资助计划，探索建立科普专业技术职称体系。"


def test_cast_pinyin_document_is_clean_simplified(seeds):
    doc, clauses = seeds["cast-2021"]
    pinyin = re.compile(r"[(（][a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+[)）]")
    for c in clauses:
        assert not pinyin.search(c.text), c.text
        assert "?" not in c.text and "，、" not in c.text and "，，" not in c.text and "，。" not in c.text
    assert not pinyin.search(doc.text)
    for trad in "國學會協發關於與為說這時們":
        assert trad not in doc.text
    by = {c.clause_id: c for c in clauses}
    assert by["cast-2021/2.2#1"].text == "(二)强化学会科普工作职责。"
    assert by["cast-2021/2.2#2"].context == "二、工作内容 > (二)强化学会科普工作职责"
    assert "科普工作是学会主要业务工作之一" in by["cast-2021/2.1#1"].text  # mojibake repaired
    assert "为本专业领域发展营造良好氛围" in by["cast-2021/2.1#2"].text
    assert by["cast-2021/p1#1"].text.startswith("根据《全民科学素质行动规划纲要")
    assert not any(c.text.startswith(("中国科协关于", "各全国学会")) for c in clauses)


def test_chongqing_newspaper_markdown(seeds):
    doc, clauses = seeds["chongqing-kxsz-shishi-newspaper"]
    assert "上接" not in doc.text
    by = {c.clause_id: c for c in clauses}
    assert by["chongqing-kxsz-shishi-newspaper/p1#1"].text == "大力发展数字科普文化产业。"
    assert by["chongqing-kxsz-shishi-newspaper/3.p2#1"].text == "加强统筹规划和宏观指导。"
    assert by["chongqing-kxsz-shishi-newspaper/3.p2#2"].context == "(三)实施科普基础设施工程 > 加强统筹规划和宏观指导"
    assert by["chongqing-kxsz-shishi-newspaper/5.1.1#2"].context == "五、组织实施 > (一)组织保障 > 1.完善协同联动机制"
    # paragraphs cut by the newspaper's column breaks are whole again
    texts = [c.text for c in clauses]
    assert any(t.startswith("在城乡社区综合服务设施、社区图书馆等平台") for t in texts)
    assert any("健康中国重庆行动、科普文化进万家" in t for t in texts)


def test_jiangxi_agencies_and_no_signature(seeds):
    doc, clauses = seeds["jiangxi-2023"]
    by = {c.clause_id: c for c in clauses}
    assert by["jiangxi-2023/1.1#1"].text == "（一）强化各级党委和政府科普工作领导责任。"
    assert by["jiangxi-2023/1.1#1"].agencies == ["省科技厅"]
    assert by["jiangxi-2023/4.16#2"].agencies == ["省人大教科文卫委", "省科技厅", "省科协"]
    assert by["jiangxi-2023/3.11#5"].text == "在安全保密许可的前提下，及时普及重大科技成果；"
    assert not any("办公厅" == c.text[-3:] or c.text.startswith(("关于新时代进一步", "加强科学技术普及工作的若干措施"))
                   for c in clauses)
    assert {c.provision_id.split("/")[1].split(".")[0] for c in clauses} >= {"1", "2", "3", "4"}


def test_sichuan_inline_title_lines(seeds):
    doc, clauses = seeds["sichuan-2023"]
    by = {c.clause_id: c for c in clauses}
    assert by["sichuan-2023/2.2#1"].text == "(二)加大科普设施保障力度。"
    assert by["sichuan-2023/2.2#3"].text.startswith("鼓励建设科技馆、主题博物馆、科普公园、青少年科技馆等")
    assert by["sichuan-2023/2.2#3"].context == "二、加强科普能力建设 > (二)加大科普设施保障力度"
    assert by["sichuan-2023/1.p2#1"].text.startswith("2025年，建设省级科普基地350家以上")
    assert not any(c.text.startswith(("您好", "四川省科普工作联席会议办公室")) for c in clauses)
    assert max(int(c.provision_id.split("/")[1].split(".")[1]) for c in clauses if c.provision_id.count(".") == 1
               and not c.provision_id.split(".")[1].startswith("p")) == 20


def test_segment_accepts_document_and_tuple():
    doc = document_from_text("一、任务\n开展活动。", doc_id="x")
    assert ids(segment(doc)) == ids(segment(("x", doc.text))) == ["x/1.p1#1"]


def test_seed_copies_in_labels_sources_are_identical():
    sources = Path(__file__).resolve().parents[1] / "labels" / "sources"
    for path in SEEDS:
        assert (sources / path.name).read_bytes() == path.read_bytes()
    assert load_document(SEEDS[0]).doc_id


# --- rules for web copies (segfix) ------------------------------------------------------

def test_split_enumerated_shi_without_full_stops():
    from policytag.text.segmentation import segment

    text = "一、重点工作\n(一)加强组织建设。一是健全学会组织，培养学术带头人二是重视乡镇科协建设，三是加强企业科协建设。"
    texts = [c.text for c in segment(("d", text))]
    assert texts == ["(一)加强组织建设。", "一是健全学会组织，培养学术带头人", "二是重视乡镇科协建设，", "三是加强企业科协建设。"]
    # 第二是 / a lone 二是 without 一是 does not split
    assert [c.text for c in segment(("d", "一、工作\n(一)加强工作。第一是统筹，第二是落实。"))][-1] == "第一是统筹，第二是落实。"
    assert len(segment(("d", "一、工作\n(一)加强工作。问题之二是经费不足，需要解决。"))) == 2


def test_skip_fragment_lines_are_not_headings():
    from policytag.text.segmentation import segment

    text = "一、总体要求\n以\n——坚持服务人民。以公众需求为导向，增加知识供给。"
    clauses = segment(("d", text))
    assert clauses and all(c.context.startswith("一、总体要求") and " > 以" not in c.context for c in clauses)
    assert all(c.text != "以" for c in clauses)
