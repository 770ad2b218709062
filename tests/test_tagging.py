"""The tagging service shared by `policytag predict` and the app (serving/tagging.py).

A small deterministic stand-in model keeps these tests fast; the real models are used in
test_predict_cli.py and test_onnx.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from policytag.clause import Clause
from policytag.errors import InputError
from policytag.serving import tagging
from policytag.data.taxonomy import load_taxonomy

TAX = load_taxonomy()

# keyword -> label: the stand-in model "sees" a label when its keyword is in text or context
CUES = {"学生": "youth", "农民": "farmers", "老年": "elderly", "科技馆": "infrastructure",
        "到2025年": "goal_planning", "经费": "funding", "培训": "education_training", "活动": "activities"}


class CueModel:
    """Stand-in classifier with the PolicyClassifier prediction API."""

    def __init__(self):
        self.label_ids = TAX.label_ids
        self.theme_ids = TAX.themes
        self.thresholds = np.full(len(self.label_ids), 0.5, dtype=np.float32)
        self.version = "cue-1"
        self.metadata = {"version": "cue-1"}
        self.calls: list[list[str]] = []

    def predict_proba(self, clauses, batch_size=None, progress=False):
        texts = [(c.text + c.context) if isinstance(c, Clause) else str(c) for c in clauses]
        self.calls.append(texts)
        out = np.full((len(texts), len(self.label_ids)), 0.1, dtype=np.float32)
        for i, t in enumerate(texts):
            for cue, lab in CUES.items():
                if cue in t:
                    out[i, self.label_ids.index(lab)] = 0.9
        return out

    def decide(self, probs):
        return (np.asarray(probs) >= self.thresholds[None, :]).astype(np.int8)

    def decide_clauses(self, probs, clauses):
        return self.decide(probs)


def _clauses():
    return [
        Clause("d1", "d1#1", "到2025年,建成科技馆10座。", context="一、目标", provision_id="d1/1", span=(0, 14)),
        Clause("d1", "d1#2", "加大经费投入。", context="一、目标", provision_id="d1/1", span=(14, 21)),
        Clause("d1", "d1#3", "面向农民开展培训活动,推广实用技术。", context="二、农民", provision_id="d1/2",
               span=(30, 48), agencies=["市农业农村局"]),
        Clause("d2", "d2#1", "坚持以人民为中心。", context="", provision_id="", span=None),
        Clause("d2", "d2#2", "组织学生参加科普活动,参观科技馆,开展老年人培训和各类主题活动。", context="三、青少年"),
    ]


def test_tag_clauses_rows_in_input_order_with_all_fields():
    model = CueModel()
    rows = tagging.tag_clauses(model, _clauses(), batch_size=2)
    assert [r["clause_id"] for r in rows] == ["d1#1", "d1#2", "d1#3", "d2#1", "d2#2"]
    r0 = rows[0]
    for key in ("doc_id", "clause_id", "context", "text", "span", "provision_id", "agencies",
                "themes", "measures", "model_version"):
        assert key in r0
    assert all(f"p_{lab}" in r0 for lab in TAX.label_ids)
    assert r0["themes"] == ["infrastructure"] and r0["measures"] == ["goal_planning"]
    assert r0["span"] == [0, 14] and r0["model_version"] == "cue-1"
    assert rows[2]["themes"] == ["farmers"]
    assert rows[2]["measures"] == ["education_training", "activities"]
    assert rows[2]["agencies"] == ["市农业农村局"]
    assert rows[3]["themes"] == [] and rows[3]["measures"] == [] and rows[3]["span"] is None
    # themes keep the taxonomy order
    assert rows[4]["themes"] == ["youth", "elderly", "infrastructure"]


def test_tag_clauses_uses_length_sorted_batches_and_reports_progress():
    model = CueModel()
    done = []
    tagging.tag_clauses(model, _clauses(), batch_size=2, progress=done.append)
    assert [len(c) for c in model.calls] == [2, 2, 1]
    lengths = [len(t) for call in model.calls for t in call]
    assert lengths == sorted(lengths, reverse=True)  # longest first: dynamic padding wastes little
    assert sum(done) == 5


def test_tag_clauses_accepts_dicts_and_strings_and_empty():
    model = CueModel()
    rows = tagging.tag_clauses(model, [{"text": "到2025年", "clause_id": "x"}, "组织学生"])
    assert rows[0]["measures"] == ["goal_planning"] and rows[1]["themes"] == ["youth"]
    assert tagging.tag_clauses(model, []) == []


def test_thresholds_are_per_label():
    model = CueModel()
    model.thresholds[TAX.label_ids.index("funding")] = 0.95  # 0.9 no longer passes for funding
    rows = tagging.tag_clauses(model, _clauses())
    assert rows[1]["measures"] == []
    assert rows[0]["measures"] == ["goal_planning"]


def test_aggregate_provisions_unions_labels_and_takes_max_probability():
    rows = tagging.tag_clauses(CueModel(), _clauses())
    prov = tagging.aggregate_provisions(rows)
    assert [p["provision_id"] for p in prov] == ["d1/1", "d1/2", "d2#1", "d2#2"]
    p1 = prov[0]
    assert p1["clause_ids"] == ["d1#1", "d1#2"] and p1["n_clauses"] == 2
    assert p1["text"] == "到2025年,建成科技馆10座。加大经费投入。"
    assert p1["span"] == [0, 21]
    assert p1["themes"] == ["infrastructure"]
    assert p1["measures"] == ["goal_planning", "funding"]
    assert p1["p_funding"] == pytest.approx(0.9) and p1["p_youth"] == pytest.approx(0.1)


def test_heatmap_matrix_counts_theme_measure_pairs_with_chinese_names():
    rows = tagging.tag_clauses(CueModel(), _clauses())
    hm = tagging.heatmap_matrix(rows, TAX)
    assert hm.shape == (len(TAX.themes) + 1, len(TAX.measures) + 1)
    assert hm.loc["农民", "教育培训"] == 1 and hm.loc["农民", "活动服务"] == 1
    assert hm.loc["科普基础设施", "目标规划"] == 1
    assert hm.loc["无", "资金投入"] == 1  # a measure without a theme
    assert hm.loc["无", "无"] == 1       # neither
    assert hm.loc["青少年", "活动服务"] == 1 and hm.loc["老年人", "教育培训"] == 1
    no_none = tagging.heatmap_matrix(rows, TAX, include_none=False, names="id")
    assert no_none.shape == (len(TAX.themes), len(TAX.measures))
    assert no_none.loc["farmers", "activities"] == 1


def test_family_counts_groups_measures_by_instrument_family():
    rows = tagging.tag_clauses(CueModel(), _clauses())
    fc = tagging.family_counts(rows, TAX)
    assert set(fc["family"]) == {"supply", "environment", "demand"}
    assert fc["count"].sum() == sum(len(r["measures"]) for r in rows)
    assert fc.set_index("measure").loc["activities", "count"] == 2
    assert fc.set_index("measure").loc["funding", "family_zh"] == "供给型"
    assert fc["share"].sum() == pytest.approx(1.0)


def test_document_summary_per_document_and_overall(tmp_path):
    rows = tagging.tag_clauses(CueModel(), _clauses())
    df = tagging.document_summary(rows, TAX)
    assert list(dict.fromkeys(df["doc_id"])) == ["d1", "d2", "(all)"]
    d1 = df[(df.doc_id == "d1") & (df.theme == "farmers")].iloc[0]
    assert d1["clauses"] == 3 and d1["theme_clauses"] == 1 and d1["教育培训 (education_training)"] == 1
    all_infra = df[(df.doc_id == "(all)") & (df.theme == "infrastructure")].iloc[0]
    assert all_infra["theme_clauses"] == 2
    out = tagging.write_summary(rows, tagging.summary_path(tmp_path / "tags.xlsx"))
    assert out.name == "tags.summary.csv"
    back = pd.read_csv(out, encoding="utf-8-sig")
    assert "theme_zh" in back.columns and "农民" in set(back["theme_zh"])


@pytest.mark.parametrize("ext", [".jsonl", ".csv", ".xlsx"])
def test_write_rows_round_trips_chinese_text(tmp_path, ext):
    rows = tagging.tag_clauses(CueModel(), _clauses())
    path = tagging.write_rows(rows, tmp_path / f"out{ext}")
    if ext == ".jsonl":
        back = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert back == rows
        return
    if ext == ".csv":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel opens it as UTF-8
        df = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False)
    else:
        df = pd.read_excel(path, keep_default_na=False)
    assert list(df["text"]) == [r["text"] for r in rows]
    assert df.loc[2, "context"] == "二、农民" and df.loc[2, "agencies"] == "市农业农村局"
    assert df.loc[2, "measures"] == "education_training;activities"
    assert int(df.loc[0, "span_start"]) == 0 and int(df.loc[0, "span_end"]) == 14
    assert float(df.loc[0, "p_goal_planning"]) == pytest.approx(0.9)


def test_write_rows_rejects_unknown_extension(tmp_path):
    with pytest.raises(InputError, match=r"\.jsonl, \.csv or \.xlsx"):
        tagging.write_rows([], tmp_path / "out.txt")


def test_write_rows_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "out" / "out.csv"
    path.parent.mkdir()
    path.write_text("previous complete file\n", encoding="utf-8")
    rows = tagging.tag_clauses(CueModel(), _clauses())

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tagging.write_rows(rows, path)
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == "previous complete file\n"
    assert [p.name for p in path.parent.iterdir()] == ["out.csv"]  # no temporary file left


def test_xlsx_drops_characters_excel_forbids(tmp_path):
    rows = [{"doc_id": "d", "clause_id": "d#1", "text": "科普\x0b活动", "themes": [], "measures": []}]
    df = pd.read_excel(tagging.write_rows(rows, tmp_path / "o.xlsx"))
    assert df.loc[0, "text"] == "科普活动"


def test_tag_text_segments_and_tags():
    text = "一、总体目标\n到2025年,建成科技馆10座。加大经费投入。\n二、重点任务\n面向农民开展培训活动。\n"
    rows = tagging.tag_text(CueModel(), text, doc_id="pasted")
    assert rows and all(r["doc_id"] == "pasted" for r in rows)
    joined = "".join(r["text"] for r in rows)
    assert "科技馆" in joined and "农民" in joined
    assert any("goal_planning" in r["measures"] for r in rows)


def test_tag_document_reads_a_file(tmp_path):
    p = tmp_path / "doc.txt"
    p.write_text("一、总体目标\n到2025年,建成科技馆10座。\n", encoding="utf-8")
    rows = tagging.tag_document(CueModel(), p)
    assert rows and rows[0]["themes"] == ["infrastructure"]


def test_no_model_and_no_production_model_says_how_to_train(monkeypatch):
    from policytag.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="policytag train"):
        tagging.resolve_model_dir(None)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        tagging.resolve_model_dir("/no/such/model")
