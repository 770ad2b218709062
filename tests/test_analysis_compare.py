"""policytag.analysis.compare and its export (gold labels as the tagged rows; no model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from policytag.analysis.compare import compare_documents, group_rows
from policytag.analysis.compare_export import (difference_table, plot_comparison, shares_table,
                                               write_comparison_xlsx)
from policytag.analysis.inputs import InputSet, check_output, gold_rows, load_inputs, load_metadata, read_rows
from policytag.cli.main import app
from policytag.errors import InputError
from policytag.serving.tagging import document_tagger, write_rows
from policytag.data.taxonomy import load_taxonomy

SHEETS = ["占比", "差异", "政策工具类别", "条款", "说明"]


def _build():
    sets = [InputSet("jiangxi-2023", gold_rows(["jiangxi-2023"]), "gold"),
            InputSet("sichuan-2023", gold_rows(["sichuan-2023"]), "gold")]
    groups, labels = group_rows(sets, "doc", load_metadata())
    return compare_documents(groups, labels=labels)


@pytest.fixture(scope="module")
def comparison():
    return _build()


def test_shares_are_counts_over_clauses(comparison):
    c = comparison
    assert c.groups == ["jiangxi-2023", "sichuan-2023"]
    assert c.n_clauses == {"jiangxi-2023": 61, "sichuan-2023": 90}
    for g in c.groups:
        np.testing.assert_allclose(c.shares[g].values * c.n_clauses[g] / 100, c.counts[g].values)
    d = c.difference()
    np.testing.assert_allclose(d.values, c.shares["sichuan-2023"].values - c.shares["jiangxi-2023"].values)


def test_cell_clauses_match_counts(comparison):
    c = comparison
    cell = c.cell_clauses("sichuan-2023", "infrastructure", "facility_building")
    assert len(cell) == c.counts["sichuan-2023"].loc["infrastructure", "facility_building"] > 0
    assert all("infrastructure" in r["themes"] and "facility_building" in r["measures"] for r in cell)
    # Chinese names and the (none) row work too
    assert c.cell_clauses("sichuan-2023", "科普基础设施", "设施建设") == cell
    none = c.cell_clauses("jiangxi-2023", "无", "组织协调")
    assert none and all(not r["themes"] and "organization" in r["measures"] for r in none)
    with pytest.raises(InputError, match="unknown theme"):
        c.cell_clauses("jiangxi-2023", "nobody", "funding")


def test_family_balance_sums_to_100(comparison):
    fam = comparison.families
    for g in comparison.groups:
        assert fam[fam.group == g].measure_share.sum() == pytest.approx(100.0)
    tax = load_taxonomy()
    jx = comparison.rows["jiangxi-2023"]
    supply = sum(1 for r in jx for m in r["measures"] if tax.family_of(m) == "supply")
    row = fam[(fam.group == "jiangxi-2023") & (fam.family == "supply")].iloc[0]
    assert row.measures == supply


def test_difference_table_sorted_from_growth_to_shrink(comparison):
    df = difference_table(comparison)
    col = [c for c in df.columns if c.startswith("差异")][0]
    assert list(df[col]) == sorted(df[col], reverse=True)
    assert set(df["变化"]) <= {"增加", "减少", "持平"}
    assert df.iloc[0][col] > 0 > df.iloc[-1][col]


def test_xlsx_side_by_side_difference_no_formulas(tmp_path):
    comparison = _build()
    # a clause whose text starts with "=" must not become a live formula
    comparison.rows["jiangxi-2023"][0] = dict(comparison.rows["jiangxi-2023"][0], text="=HYPERLINK(\"x\")",
                                              context="-1 dangerous")
    path = write_comparison_xlsx(comparison, tmp_path / "cmp.xlsx", source="gold 标注")
    wb = load_workbook(path)
    assert wb.sheetnames == SHEETS
    shares = wb["占比"]
    header = [c.value for c in shares[1]]
    assert header[:2] == ["主题", "措施类型"]
    assert "江西 2023 占比(%)" in header and "四川 2023 占比(%)" in header
    assert shares.freeze_panes == "A2" and shares.auto_filter.ref.startswith("A1:")
    assert shares.column_dimensions["A"].width >= 6
    assert any(str(c.value).startswith("差异 四川 2023−江西 2023") for c in wb["差异"][1])
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate} is a formula"
    texts = [c.value for c in wb["条款"]["E"]]
    assert "'=HYPERLINK(\"x\")" in texts
    assert "'-1 dangerous" in [c.value for c in wb["条款"]["D"]]
    import pandas as pd

    df = pd.read_excel(path, sheet_name="占比")
    assert len(df) == 7 * 12  # (6 themes + 无) × (11 measures + 无)
    assert df["江西 2023 条款数"].sum() > 0


def test_png_and_svg(comparison, tmp_path):
    png = tmp_path / "cmp.png"
    warnings = plot_comparison(comparison, png, source="gold 标注")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert isinstance(warnings, list)
    svg = tmp_path / "cmp.svg"
    plot_comparison(comparison, svg)
    assert "<svg" in svg.read_text(encoding="utf-8")[:500]
    with pytest.raises(InputError):
        plot_comparison(comparison, tmp_path / "cmp.jpg")


def test_three_groups_and_group_by_level():
    rows = [InputSet(d, gold_rows([d]), "gold") for d in ("kunshan-2023", "jiangxi-2023", "sichuan-2023")]
    groups, _ = group_rows(rows, "level", load_metadata())
    assert list(groups) == ["county", "provincial"]
    assert len(groups["provincial"]) == 61 + 90
    g3, labels = group_rows(rows, "doc", load_metadata())
    c = compare_documents(g3, labels=labels)
    assert set(c.differences) == {"jiangxi-2023", "sichuan-2023"}
    seeds = ["cast-2021", "chongqing-kxsz-shishi-newspaper", "jiangxi-2023", "kunshan-2023", "sichuan-2023"]
    by_year, _ = group_rows([InputSet("all", gold_rows(seeds), "gold")], "year", load_metadata())
    assert list(by_year) == ["2021", "2023"]


def test_compare_needs_two_groups():
    with pytest.raises(InputError, match="at least two"):
        compare_documents({"a": gold_rows(["kunshan-2023"])})


def test_predict_outputs_roundtrip(tmp_path):
    rows = gold_rows(["jiangxi-2023"])
    for ext in (".csv", ".xlsx", ".jsonl"):
        p = write_rows(rows, tmp_path / f"pred{ext}")
        back = read_rows(p)
        assert [r["measures"] for r in back] == [r["measures"] for r in rows]
        assert [r["agencies"] for r in back] == [r["agencies"] for r in rows]
    bad = tmp_path / "seg.jsonl"
    bad.write_text(json.dumps({"doc_id": "x", "text": "无标签"}, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="themes"):
        read_rows(bad)


def test_documents_are_tagged_with_the_given_model(tmp_path):
    tax = load_taxonomy()

    class StubModel:  # stands in for a trained classifier: every clause gets funding
        label_ids = tax.label_ids
        thresholds = np.full(len(tax.label_ids), 0.5)
        version = "stub-1"

        def predict_proba(self, clauses, batch_size=None):
            p = np.zeros((len(clauses), len(self.label_ids)))
            p[:, self.label_ids.index("funding")] = 0.9
            return p

        def decide(self, probs):
            return (np.asarray(probs) >= self.thresholds[None, :]).astype(np.int8)

        def decide_clauses(self, probs, clauses):
            return self.decide(probs)

    doc = tmp_path / "a-2024-plan.txt"
    doc.write_text("一、总体要求\n(一)加大投入。将科普经费列入财政预算。\n", encoding="utf-8")
    sets = load_inputs([str(doc)], tag_file=document_tagger(model=StubModel()))
    assert sets[0].kind == "documents" and sets[0].rows
    assert all(r["measures"] == ["funding"] and r["model_version"] == "stub-1" for r in sets[0].rows)


def test_check_output_refuses_an_input(tmp_path):
    pred = write_rows(gold_rows(["jiangxi-2023"]), tmp_path / "pred.xlsx")
    with pytest.raises(InputError, match="also an input"):
        check_output(pred, [str(pred)])
    with pytest.raises(InputError, match=".xlsx"):
        check_output(tmp_path / "out.csv", [])


def test_cli_compare_gold(tmp_path):
    out, png = tmp_path / "c.xlsx", tmp_path / "c.png"
    res = CliRunner().invoke(app, ["compare", "jiangxi-2023", "sichuan-2023", "--gold", "-o", str(out),
                                   "--png", str(png), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert load_workbook(out).sheetnames == SHEETS and png.exists()
    # a predict output can be compared with a gold document, but never overwritten
    pred = write_rows(gold_rows(["kunshan-2023"]), tmp_path / "kunshan.xlsx")
    res = CliRunner().invoke(app, ["compare", str(pred), "jiangxi-2023", "--gold", "-o", str(pred)])
    assert isinstance(res.exception, InputError) and "also an input" in str(res.exception)
    res = CliRunner().invoke(app, ["compare", str(pred), "jiangxi-2023", "--gold", "-o", str(tmp_path / "k.xlsx")])
    assert res.exit_code == 0, res.output


def test_cli_unknown_gold_doc(tmp_path):
    res = CliRunner().invoke(app, ["compare", "nowhere-2020", "jiangxi-2023", "--gold", "-o", str(tmp_path / "x.xlsx")])
    assert isinstance(res.exception, InputError) and "gold documents are" in str(res.exception)


def test_shares_table_columns(comparison):
    df = shares_table(comparison)
    assert list(df.columns[:2]) == ["主题", "措施类型"]
    assert df["江西 2023 占比(%)"].max() <= 100
