"""One input expansion for segment, predict and review-queue; stdin that is not text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .conftest import FIXTURES, JIANGXI

POLICY = FIXTURES / "ingest" / "policy_utf8_bom.txt"


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(POLICY, root / "a.txt")
    shutil.copy(JIANGXI, root / "sub" / "deeper" / "jiangxi-2023-kepu-cuoshi.txt")
    (root / "sub" / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0 old word")
    (root / "sub" / "picture.png").write_bytes(b"\x89PNG")
    (root / ".hidden").mkdir()
    shutil.copy(POLICY, root / ".hidden" / "h.txt")
    (root / "sub" / "clauses.jsonl").write_text(json.dumps({"clause_id": "j#1", "text": "开展科普活动。"},
                                                           ensure_ascii=False) + "\n", encoding="utf-8")
    return root


def test_the_three_commands_expand_the_same_way():
    from policytag.cli import corrections, segment
    from policytag.serving import batch
    from policytag.text import inputs

    # one implementation: predict and segment call it, review-queue too
    assert batch._inputs is inputs
    assert "policytag.text.inputs" in Path(segment.__file__).read_text(encoding="utf-8")
    assert "policytag.text.inputs" in Path(corrections.__file__).read_text(encoding="utf-8")


def test_segment_dir_reports_a_doc_file_like_predict(cli, tmp_path):
    """Was: `segment DIR` ignored .doc files without a word (`predict` reported them)."""
    root = _tree(tmp_path)
    res = cli("segment", root, "-o", tmp_path / "out.jsonl", "--no-progress")
    assert res.code == 1, res.err
    assert "old.doc" in res.err and "save it as .docx" in res.err
    assert "picture.png" not in res.err  # ignored, not a failure
    docs = {json.loads(line)["doc_id"] for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()}
    assert docs == {"a", "jiangxi-2023"}


def test_predict_reports_the_doc_file_the_same_way(tmp_path):
    from policytag.serving.batch import expand_inputs

    files, skips = expand_inputs([str(_tree(tmp_path))])
    assert [f.path.name for f in files] == ["a.txt", "clauses.jsonl", "jiangxi-2023-kepu-cuoshi.txt"]
    failed = [s for s in skips if s.failed]
    assert len(failed) == 1 and failed[0].path.endswith("old.doc") and "save it as .docx" in failed[0].reason


def test_review_queue_dir_is_recursive(cli, baseline_model_dir, tmp_path):
    """Was: `review-queue dir/` read only the top folder (`predict dir/` is recursive)."""
    root = _tree(tmp_path)
    out = tmp_path / "q.jsonl"
    res = cli("review-queue", root, "--model", baseline_model_dir, "-n", "500", "-o", out)
    assert res.code == 0, res.err
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {"jiangxi-2023", "a"} <= {r["doc_id"] for r in rows}
    assert "j#1" in {r["clause_id"] for r in rows}  # the clause file two folders down
    assert "old.doc" in res.err


def test_segment_glob_patterns(cli, tmp_path):
    root = _tree(tmp_path)
    res = cli("segment", str(root / "**" / "*.txt"), "-o", tmp_path / "out.jsonl", "--no-progress")
    assert res.code == 0, res.err
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8").count("\n") > 10


def test_binary_stdin_is_a_one_line_skip(cli, tmp_path):
    """Was: UnicodeDecodeError traceback from sys.stdin.read()."""
    import random

    rng = random.Random(3)
    data = bytes(rng.getrandbits(8) for _ in range(4000))
    res = cli("segment", "-", "-o", tmp_path / "out.jsonl", "--no-progress", stdin=data)
    assert res.code == 1, res.err
    assert "Traceback" not in res.err
    assert "<stdin>: this file does not look like text in a known encoding" in res.err
    # GB18030 on stdin is fine: it is decoded like a .txt file
    res = cli("segment", "-", "-o", tmp_path / "gb.jsonl", "--no-progress",
              stdin=POLICY.read_text(encoding="utf-8-sig").encode("gb18030"))
    assert res.code == 0, res.err
    assert "科学" in (tmp_path / "gb.jsonl").read_text(encoding="utf-8")


def test_warnings_reach_the_predict_report(cli, tiny_model_dir, tmp_path):
    data = JIANGXI.read_bytes()
    cut = data.index(b"\n", 1500) + 1
    (tmp_path / "stray.txt").write_bytes(data[:cut] + b"\xfe" + data[cut:])
    res = cli("predict", tmp_path / "stray.txt", "--model", tiny_model_dir, "-o", tmp_path / "t.jsonl", "-q")
    assert res.code == 0, res.err
    assert "warning" in res.err and "not valid UTF-8 were dropped, at line" in res.err
