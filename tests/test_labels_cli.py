"""``policytag labels validate | stats | agreement``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from policytag import paths
from policytag.cli.main import app

runner = CliRunner()


def rec(doc, n, text, themes=(), measures=(), source="gold"):
    return {"doc_id": doc, "clause_id": f"{doc}#{n}", "context": "一、总体要求", "text": text,
            "themes": list(themes), "measures": list(measures), "source": source}


GOOD = [
    rec("a", 1, "坚持以习近平新时代中国特色社会主义思想为指导。"),
    rec("a", 2, "将科普经费列入本级财政预算。", [], ["funding"]),
    rec("b", 1, "鼓励建设科技馆、青少年科技馆等。", ["infrastructure", "youth"], ["facility_building"]),
    rec("b", 2, "开展老年人智能手机运用培训、竞赛等活动。", ["elderly"], ["education_training", "activities"]),
]


def write(path, lines):
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l, ensure_ascii=False)
                              for l in lines) + "\n", encoding="utf-8")
    return path


def test_validate_ok(tmp_path):
    p = write(tmp_path / "good.jsonl", GOOD)
    r = runner.invoke(app, ["labels", "validate", str(p)])
    assert r.exit_code == 0, r.output
    assert "4 valid clause(s) from 2 document(s)" in r.output and "ok" in r.output


def test_validate_lists_all_errors_and_exits_1(tmp_path):
    good = write(tmp_path / "good.jsonl", GOOD)
    bad = write(tmp_path / "bad.jsonl", [
        GOOD[0], rec("a", 2, "甲。", ["kids"], []), "{oops", rec("a", 4, "乙。", [], ["money", "funding"]),
    ])
    r = runner.invoke(app, ["labels", "validate", str(good), str(bad)])
    assert r.exit_code == 1
    out = r.output.replace("\n", " ")
    assert f"{bad}:2 (a#2)" in r.output and "'kids'" in out
    assert f"{bad}:3" in r.output and "not valid JSON" in out
    assert f"{bad}:4 (a#4)" in r.output and "'money'" in out
    assert "3 error(s)" in out
    assert f"{good}: 4 valid" in out  # the good file is still reported


def test_validate_source_and_unlabeled_options(tmp_path):
    pred = write(tmp_path / "pred.jsonl", [rec("a", 1, "甲。", source="prediction")])
    assert runner.invoke(app, ["labels", "validate", str(pred)]).exit_code == 1
    assert runner.invoke(app, ["labels", "validate", "--any-source", str(pred)]).exit_code == 0
    seg = write(tmp_path / "seg.jsonl", [{"doc_id": "a", "clause_id": "a#1", "text": "甲。"}])
    assert runner.invoke(app, ["labels", "validate", str(seg)]).exit_code == 1
    assert runner.invoke(app, ["labels", "validate", "--unlabeled", str(seg)]).exit_code == 0


def test_stats_tables(tmp_path):
    p = write(tmp_path / "good.jsonl", GOOD)
    r = runner.invoke(app, ["labels", "stats", str(p), "--per-doc"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    for needle in ("Clauses per label", "Clauses per document", "co-occurrence", "Per genre family", "Per level",
                   "infrastructure", "青少年", "资金投入", "(no theme)", "fewer than 30"):
        assert needle in r.output, needle


def test_stats_json(tmp_path):
    p = write(tmp_path / "good.jsonl", GOOD)
    r = runner.invoke(app, ["labels", "stats", str(p), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["clauses"] == 4
    assert data["labels"]["youth"] == 1 and data["labels"]["funding"] == 1
    assert data["documents"]["b"]["clauses"] == 2
    assert data["cooccurrence"]["youth"]["facility_building"] == 1
    assert data["cooccurrence"]["(no theme)"]["funding"] == 1


def test_agreement_command(tmp_path):
    p1 = write(tmp_path / "p1.jsonl", GOOD)
    second = [dict(GOOD[1]), dict(GOOD[2])]
    second[1] = {**second[1], "themes": ["infrastructure"]}
    p2 = write(tmp_path / "p2.jsonl", second)
    r = runner.invoke(app, ["labels", "agreement", str(p1), str(p2), "--json", "--show"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["n"] == 2
    assert data["measures"]["micro_f1"] == 1.0
    assert data["themes"]["micro_f1"] == pytest.approx(2 / 3)
    assert [d["clause_id"] for d in data["disagreements"]] == ["b#1"]
    r = runner.invoke(app, ["labels", "agreement", str(p1), str(p2), "--show"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "Agreement per dimension" in r.output and "b#1" in r.output


@pytest.mark.skipif(not paths.GOLD_FILE.exists(), reason="labels/clauses.jsonl not written yet")
def test_shipped_gold_validates():
    r = runner.invoke(app, ["labels", "validate"])
    assert r.exit_code == 0, r.output
