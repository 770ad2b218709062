"""Fast parts of the cluster engine that need no Ray cluster (tests/test_cluster.py starts one)."""

from __future__ import annotations

import json

import pytest

from policytag.errors import PolicytagError
from policytag.serving import ray_engine, tagging


def test_output_modes(tmp_path):
    s = ray_engine.ray_settings()
    assert ray_engine.resolve_output(tmp_path / "tags.csv", None, s)[0] == "file"
    mode, path, fmt = ray_engine.resolve_output(tmp_path / "out", None, s)
    assert (mode, fmt) == ("dir", "parquet")
    (tmp_path / "empty").mkdir()
    assert ray_engine.resolve_output(tmp_path / "empty", "jsonl", s)[2] == "jsonl"
    with pytest.raises(PolicytagError, match="drop --format"):
        ray_engine.resolve_output(tmp_path / "tags.csv", "parquet", s)
    with pytest.raises(PolicytagError, match="parquet or jsonl"):
        ray_engine.resolve_output(tmp_path / "out", "xlsx", s)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(PolicytagError, match="not empty"):
        ray_engine.resolve_output(tmp_path / "full", None, s)


def test_settings_cli_over_config():
    s = ray_engine.ray_settings(["ray.shard_rows=7"], num_workers=3, address=None)
    assert s["shard_rows"] == 7 and s["num_workers"] == 3 and s["address"] is None


def _row(doc, i, themes, measures):
    return {"doc_id": doc, "clause_id": f"{doc}/1#{i}", "provision_id": f"{doc}/1", "context": "", "text": "文本",
            "span": [i, i + 2], "agencies": [], "themes": themes, "measures": measures, "p_youth": 0.5,
            "model_version": "v"}


def test_summary_counts_equal_document_summary():
    rows = [_row("a", 1, ["youth"], ["training"]), _row("a", 2, [], []), _row("b", 1, ["youth"], ["training"]),
            _row("a", 3, ["youth"], ["training"])]
    sc = ray_engine.SummaryCounts()
    for r in rows:
        sc.add(r)
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(tagging.document_summary(sc.rows()), tagging.document_summary(rows))


def test_shards(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [_row("a", i, ["youth"] if i % 2 else [], []) for i in range(5)]
    w = ray_engine.ShardWriter(tmp_path, "parquet", shard_rows=2)
    w.add(rows[:3])
    w.add(rows[3:])
    files = w.close()
    assert [f.name for f in files] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    back = [r for f in files for r in pq.read_table(f).to_pylist()]
    assert back == rows
    j = ray_engine.ShardWriter(tmp_path / "j", "jsonl", shard_rows=10)
    (tmp_path / "j").mkdir()
    j.add(rows)
    (f,) = j.close()
    assert [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines()] == rows


def test_duplicate_document_names_follow_the_local_rule():
    from collections import Counter

    seen = Counter()
    assert ray_engine._doc_rename("kunshan-2023", seen) is None
    ren = ray_engine._doc_rename("kunshan-2023", seen)
    row = {"doc_id": "kunshan-2023", "clause_id": "kunshan-2023/1#1"}
    ray_engine._apply_rename(row, *ren)
    assert row == {"doc_id": "kunshan-2023-2", "clause_id": "kunshan-2023-2/1#1"}


def test_cli_rejects_ray_options_with_local_engine(tmp_path, baseline_model_dir):
    from typer.testing import CliRunner

    from policytag.cli.main import app

    doc = tmp_path / "d.txt"
    doc.write_text("一、加强青少年科普教育。", encoding="utf-8")
    res = CliRunner().invoke(app, ["predict", str(doc), "-m", str(baseline_model_dir), "-o", str(tmp_path / "o.csv"),
                                   "--num-workers", "2"])
    assert res.exit_code != 0
    assert "--engine ray" in str(res.exception or res.output)


def test_unreachable_address_fails_fast_with_what_to_do(tmp_path, baseline_model_dir):
    from policytag.serving import batch

    doc = tmp_path / "d.txt"
    doc.write_text("一、加强青少年科普教育。", encoding="utf-8")
    opts = batch.PredictOptions(inputs=[str(doc)], output=str(tmp_path / "o.jsonl"), model=str(baseline_model_dir),
                                progress=False)
    with pytest.raises(ray_engine.RayEngineError, match="ray start --head"):
        ray_engine.run_predict_ray(opts, address="127.0.0.1:1")
    assert not (tmp_path / "o.jsonl").exists()
