"""The corrections store and the spreadsheet round trip (no model needed)."""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3

import pandas as pd
import pytest
from typer.testing import CliRunner

from policytag.clause import Clause
from policytag.data.corrections import (
    CorrectionStore,
    clause_key,
    export_corrections,
    import_corrections,
    normalize_labels,
    parse_label_cell,
)
from policytag.errors import InputError, UnknownLabelError

TEXT = "将科普经费列入本级财政预算,逐步提高科普投入水平。"
TEXT2 = "鼓励建设科技馆、主题博物馆、科普公园、青少年科技馆等。"


@pytest.fixture
def store(tmp_path):
    return CorrectionStore(tmp_path / "c.sqlite")


def test_correction_flips_labels_and_keeps_history(store):
    clause = Clause(doc_id="d", clause_id="d#1", text=TEXT, context="三、保障措施")
    store.add(clause, [], ["goal_planning"], predicted={"themes": [], "measures": ["goal_planning"]})
    store.add(clause, [], ["funding"], annotator="ana", note="经费 → funding")
    latest = store.latest()
    assert len(latest) == 1
    c = latest[0]
    assert (c.text, c.context, c.doc_id, c.clause_id) == (TEXT, "三、保障措施", "d", "d#1")
    assert c.themes == [] and c.measures == ["funding"] and c.source == "correction"
    hist = store.history(TEXT)
    assert [h["measures"] for h in hist] == [["goal_planning"], ["funding"]]
    assert hist[0]["predicted_measures"] == ["goal_planning"]
    assert hist[1]["annotator"] == "ana" and hist[1]["note"] == "经费 → funding"


def test_saving_twice_does_not_duplicate(store):
    a = store.add(TEXT, [], ["funding"])
    b = store.add(TEXT, [], ["funding"])
    assert a == b and store.count() == 1
    # the same labels in another order / spelling, and with whitespace in the text: still the same
    c = store.add(" " + TEXT.replace("，", ",") + " ", [], "资金投入")
    assert c == a and store.count() == 1
    # a different label is a new row; going back is one more (history is kept)
    store.add(TEXT, ["infrastructure"], ["funding"])
    store.add(TEXT, [], ["funding"])
    assert store.count() == 3 and store.count(distinct=True) == 1


def test_restart_keeps_corrections(tmp_path):
    path = tmp_path / "c.sqlite"
    s1 = CorrectionStore(path)
    s1.add(TEXT, [], ["funding"])
    s1.add(TEXT2, ["infrastructure", "youth"], ["facility_building"])
    del s1
    s2 = CorrectionStore(path)
    got = {c.text: (c.themes, c.measures) for c in s2.latest()}
    assert got == {TEXT: ([], ["funding"]), TEXT2: (["youth", "infrastructure"], ["facility_building"])}


def test_unknown_label_is_rejected_and_nothing_written(store):
    with pytest.raises(UnknownLabelError, match="youth"):
        store.add(TEXT, ["teenagers"], [])
    with pytest.raises(UnknownLabelError):
        store.add(TEXT, ["funding"], [])  # a measure id given as a theme
    with pytest.raises(InputError):
        store.add("   ", [], ["funding"])
    assert store.count() == 0


def test_store_is_wal_and_append_only(store):
    store.add(TEXT, [], ["funding"])
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM corrections")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE corrections SET themes = '[]'")
    con.close()
    assert store.count() == 1


def test_clause_key_normalizes_width_and_spaces():
    assert clause_key("到2025年，建设 科普基地。") == clause_key("到２０２５年,建设科普基地。")
    assert clause_key("a") != clause_key("b")


def test_parse_and_normalize_labels():
    assert parse_label_cell("youth、farmers") == ["youth", "farmers"]
    assert parse_label_cell("youth;farmers") == ["youth", "farmers"]
    assert parse_label_cell('["youth"]') == ["youth"]
    assert parse_label_cell(float("nan")) == [] and parse_label_cell("—") == []
    assert normalize_labels("农民, 青少年 (youth)", "themes") == ["youth", "farmers"]
    assert normalize_labels(["funding", "funding"], "measures") == ["funding"]


def test_since_and_watermark(store):
    store.add(TEXT, [], ["funding"])
    mark = store.max_id()
    t = store.records()[0]["created_at"]
    store.add(TEXT2, ["infrastructure"], ["facility_building"])
    assert store.count(after_id=mark) == 1
    assert store.count(since=t) == 1
    assert store.count() == 2


def _writer(path: str, prefix: str, n: int) -> None:
    s = CorrectionStore(path)
    for i in range(n):
        s.add(f"{prefix}第{i}条:加强科普基础设施建设。", ["infrastructure"], ["facility_building"], annotator=prefix)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "c.sqlite")
    CorrectionStore(path)  # create the schema first, as the app would
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, p, 40)) for p in ("A", "B")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    s = CorrectionStore(path)
    assert s.count() == 80
    assert sorted({r["annotator"] for r in s.records()}) == ["A", "B"]


# --------------------------------------------------------------------------- import / export


def _prediction_rows():
    """Rows as `policytag predict -o x.xlsx` writes them (lists joined by ';', p_* columns)."""
    from policytag.data.taxonomy import load_taxonomy

    tax = load_taxonomy()
    base = {f"p_{lid}": 0.01 for lid in tax.label_ids}
    rows = []
    specs = [
        ("d#1", TEXT, "", "goal_planning", {"p_goal_planning": 0.8, "p_funding": 0.4}),
        ("d#2", TEXT2, "infrastructure", "facility_building", {"p_infrastructure": 0.9, "p_facility_building": 0.7}),
        ("d#3", "开展老年人智能手机运用培训。", "elderly", "education_training",
         {"p_elderly": 0.95, "p_education_training": 0.6}),
        ("d#4", "整治以科普名义欺骗群众的行为。", "", "regulation", {"p_regulation": 0.7}),
    ]
    for cid, text, th, me, ps in specs:
        rows.append({"doc_id": "d", "clause_id": cid, "context": "二、重点任务", "text": text,
                     "themes": th, "measures": me, **base, **ps, "model_version": "v0001-20261123T1530"})
    return rows


def test_import_with_one_bad_row_rejects_just_that_row(store, tmp_path):
    rows = _prediction_rows()
    rows[0]["measures"] = "funding"                    # a real correction (row 2)
    rows[1]["themes"] = "infrastructure、teenagers"    # unknown id (row 3)
    rows[2]["text"] = "  "                             # empty text (row 4)
    # row 5 left as predicted → unchanged
    path = tmp_path / "edited.xlsx"
    pd.DataFrame(rows).to_excel(path, index=False)
    thresholds = {lid: 0.5 for lid in store.taxonomy.label_ids}
    rep = import_corrections(store, path, thresholds=lambda v: thresholds, annotator="ana")
    assert rep.accepted == [2]
    assert rep.unchanged == [5]
    assert rep.rejected == [(3, "unknown theme id 'teenagers'"), (4, "empty text")]
    assert store.count() == 1
    rec = store.records()[0]
    assert rec["measures"] == ["funding"] and rec["predicted_measures"] == ["goal_planning"]
    assert rec["scores"]["goal_planning"] == 0.8
    assert rec["model_version"] == "v0001-20261123T1530" and rec["annotator"] == "ana"
    assert "row 3: unknown theme id 'teenagers'" in rep.summary()
    # importing the same file again adds nothing
    rep2 = import_corrections(store, path, thresholds=lambda v: thresholds)
    assert rep2.accepted == [] and rep2.already_saved == [2] and store.count() == 1


def test_import_strict_and_dry_run_write_nothing(store, tmp_path):
    rows = _prediction_rows()
    rows[0]["measures"] = "funding"
    rows[1]["measures"] = "bogus"
    path = tmp_path / "edited.csv"
    pd.DataFrame(rows).to_csv(path, index=False, encoding="utf-8-sig")
    th = {lid: 0.5 for lid in store.taxonomy.label_ids}
    rep = import_corrections(store, path, thresholds=th, strict=True)
    assert not rep.applied and rep.accepted == [2] and store.count() == 0
    rep = import_corrections(store, path, thresholds=th, dry_run=True)
    assert store.count() == 0 and rep.dry_run


def test_import_without_thresholds_asks_for_the_model(store, tmp_path):
    path = tmp_path / "edited.xlsx"
    pd.DataFrame(_prediction_rows()).to_excel(path, index=False)
    with pytest.raises(InputError, match="--model"):
        import_corrections(store, path, thresholds=lambda v: None)
    assert store.count() == 0
    rep = import_corrections(store, path, all_rows=True)
    assert len(rep.accepted) == 4 and store.count() == 4


def test_import_crash_applies_nothing(store, tmp_path, monkeypatch):
    import policytag.data.corrections as corr

    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "themes": [], "measures": ["funding"]}, ensure_ascii=False)
                              for t in (TEXT, TEXT2, "第三条。")) + "\n", encoding="utf-8")
    calls = {"n": 0}
    real = corr.utcnow

    def flaky():
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the write
        return real()

    monkeypatch.setattr(corr, "utcnow", flaky)
    with pytest.raises(KeyboardInterrupt):
        import_corrections(store, path)
    monkeypatch.setattr(corr, "utcnow", real)
    assert store.count() == 0
    assert len(import_corrections(store, path).accepted) == 3


def test_import_missing_columns_is_a_file_error(store, tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame([{"text": TEXT, "themes": ""}]).to_csv(path, index=False)
    with pytest.raises(InputError, match="measures"):
        import_corrections(store, path)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".xlsx"])
def test_export_import_round_trip(store, tmp_path, suffix):
    store.add({"text": TEXT, "doc_id": "d", "context": "三、保障措施"}, [], ["funding"], annotator="ana")
    store.add(TEXT2, ["youth", "infrastructure"], ["facility_building", "activities"], note="两个主题")
    path = tmp_path / f"out{suffix}"
    assert export_corrections(store, path) == 2
    other = CorrectionStore(tmp_path / "other.sqlite")
    rep = import_corrections(other, path)
    assert rep.ok and rep.accepted == ([1, 2] if suffix == ".jsonl" else [2, 3])
    got = {c.text: (c.themes, c.measures, c.context) for c in other.latest()}
    want = {c.text: (c.themes, c.measures, c.context) for c in store.latest()}
    assert got == want
    assert other.records()[0]["annotator"] == "ana"
    # and back into the original store: everything already saved
    assert import_corrections(store, path).already_saved and store.count() == 2


def test_cli_import_reports_and_exit_code(tmp_path, monkeypatch):
    from policytag.cli.main import app

    rows = _prediction_rows()
    for r in rows:
        for k in list(r):
            if k.startswith("p_"):
                del r[k]
    rows[0]["measures"] = "funding"
    rows[1]["measures"] = "bogus"
    path = tmp_path / "edited.xlsx"
    pd.DataFrame(rows).to_excel(path, index=False)
    runner = CliRunner()
    res = runner.invoke(app, ["corrections", "import", str(path), "--annotator", "ana"])
    assert res.exit_code == 1, res.output
    assert "accepted: 3" in res.output and "row 3: unknown measure id 'bogus'" in res.output
    res = runner.invoke(app, ["corrections", "list"])
    assert res.exit_code == 0 and "funding" in res.output
    out = tmp_path / "export.csv"
    res = runner.invoke(app, ["corrections", "export", "-o", str(out)])
    assert res.exit_code == 0 and out.exists()
    assert len(pd.read_csv(out)) == 3


def test_import_tolerates_rounded_scores_at_the_threshold(store, tmp_path):
    """predict writes p_* with 4 decimals: a score that rounds onto its threshold is not a correction."""
    rows = _prediction_rows()[:1]
    rows[0]["p_farmers"] = 0.25  # the model's float was 0.24996 < 0.25: not predicted, not in the sheet
    path = tmp_path / "p.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    th = {lid: 0.5 for lid in store.taxonomy.label_ids} | {"farmers": 0.25}
    rep = import_corrections(store, path, thresholds=th)
    assert rep.unchanged == [2] and store.count() == 0
    rows[0]["themes"] = "farmers"  # the user adds it: still no change from what the model could have said
    pd.DataFrame(rows).to_csv(path, index=False)
    assert import_corrections(store, path, thresholds=th).unchanged == [2]
    rows[0]["themes"] = "farmers, youth"  # a real edit
    pd.DataFrame(rows).to_csv(path, index=False)
    assert import_corrections(store, path, thresholds=th).accepted == [2]
