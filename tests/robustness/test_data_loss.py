"""Nothing lost: an output that is one of the inputs, unwritable outputs, the user's umask,
one atomic writer."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from .conftest import JIANGXI, assert_one_line_error

CLAUSES = [{"clause_id": "u#1", "doc_id": "u", "text": "将科普经费列入本级财政预算。"},
           {"clause_id": "u#2", "doc_id": "u", "text": "开展老年人智能手机运用培训。"}]
PACKAGE = Path(__file__).resolve().parents[2] / "policytag"


@pytest.fixture
def clause_file(tmp_path) -> Path:
    p = tmp_path / "X.jsonl"
    p.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in CLAUSES), encoding="utf-8")
    return p


def _unchanged(p: Path, before: bytes) -> None:
    assert p.read_bytes() == before


def test_predict_output_equal_to_the_input_is_refused_before_anything(cli, clause_file, tmp_path):
    """Was: 'ignored X.jsonl: the output of this run', 0 clauses written over the input, exit 0."""
    before = clause_file.read_bytes()
    # the model does not exist: the output check comes first, before the model is even looked for
    res = cli("predict", clause_file, "-o", clause_file, "--model", tmp_path / "no-model", "-q")
    assert_one_line_error(res, 2, "is named as an input", "Choose another output file name")
    _unchanged(clause_file, before)
    assert not (tmp_path / "X.summary.csv").exists()


def test_predict_output_that_is_the_same_file_through_a_link(cli, clause_file, tmp_path):
    before = clause_file.read_bytes()
    link = tmp_path / "link.jsonl"
    os.link(clause_file, link)
    res = cli("predict", clause_file, "-o", link, "--model", tmp_path / "no-model", "-q")
    assert_one_line_error(res, 2, "is named as an input")
    _unchanged(clause_file, before)


def test_predict_output_among_the_files_a_folder_or_pattern_expands_to(cli, clause_file, tmp_path):
    before = clause_file.read_bytes()
    for inputs in ([tmp_path], [str(tmp_path / "*.jsonl")]):
        res = cli("predict", *inputs, "-o", clause_file, "--model", tmp_path / "no-model", "-q")
        assert_one_line_error(res, 2, "is among the inputs")
        _unchanged(clause_file, before)


def test_predict_summary_over_an_input_is_refused(cli, tmp_path):
    src = tmp_path / "tags.summary.csv"
    src.write_text("doc_id\n", encoding="utf-8")
    res = cli("predict", src, "-o", tmp_path / "tags.csv", "--model", tmp_path / "no-model", "-q")
    assert_one_line_error(res, 2, "tags.summary.csv", "is named as an input")
    assert src.read_text(encoding="utf-8") == "doc_id\n"


def test_segment_output_equal_to_the_source_is_refused(cli, tmp_path):
    """Was: `segment doc.txt -o doc.txt` replaced the document with JSON Lines."""
    doc = tmp_path / "doc.txt"
    doc.write_text(JIANGXI.read_text(encoding="utf-8"), encoding="utf-8")
    before = doc.read_bytes()
    res = cli("segment", doc, "-o", doc, "--no-progress")
    assert_one_line_error(res, 2, "is also an input")
    _unchanged(doc, before)


def test_segment_out_dir_files_over_the_sources_are_refused(cli, tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    doc = d / "jiangxi-2023-kepu-cuoshi.txt"
    doc.write_text(JIANGXI.read_text(encoding="utf-8"), encoding="utf-8")
    before = doc.read_bytes()
    # doc id jiangxi-2023 + suffix -kepu-cuoshi.txt is the source's own name
    res = cli("segment", d, "--out-dir", d, "--suffix", "-kepu-cuoshi.txt", "--no-progress")
    assert_one_line_error(res, 2, "--out-dir file", "is also an input")
    _unchanged(doc, before)
    assert sorted(p.name for p in d.iterdir()) == [doc.name]


def test_review_queue_output_equal_to_the_input_is_refused(cli, clause_file, tmp_path):
    before = clause_file.read_bytes()
    res = cli("review-queue", clause_file, "-o", clause_file, "--model", tmp_path / "no-model")
    assert_one_line_error(res, 2, "is also an input")
    _unchanged(clause_file, before)


def test_corrections_export_over_the_store_is_refused(tmp_path):
    from policytag.data.corrections import CorrectionStore, export_corrections
    from policytag.errors import OutputError

    store = CorrectionStore(tmp_path / "store.jsonl")  # an SQLite file with an unlucky name
    store.add("开展科普活动。", ["youth"], [])
    before = store.path.read_bytes()
    with pytest.raises(OutputError, match="is also an input"):
        export_corrections(store, store.path)
    assert store.path.read_bytes() == before and len(store) == 1


@pytest.mark.parametrize("command", [
    ["predict", "{src}", "-o", "/proc/nope/x.csv", "-q"],
    ["segment", "{doc}", "-o", "/proc/nope/x.jsonl", "--no-progress"],
    ["corrections", "export", "-o", "/proc/nope/x.csv"],
    ["review-queue", "{src}", "-o", "/proc/nope/x.csv"],
])
def test_unwritable_output_is_one_line_before_any_work(cli, clause_file, tmp_path, command):
    """Was: a traceback (FileNotFoundError from mkdir/mkstemp) after all the work."""
    doc = tmp_path / "doc.txt"
    doc.write_text(JIANGXI.read_text(encoding="utf-8"), encoding="utf-8")
    args = [a.format(src=clause_file, doc=doc) for a in command]
    if command[0] in ("predict", "review-queue"):
        args += ["--model", str(tmp_path / "no-model")]
    res = cli(*args)
    assert_one_line_error(res, 2, "cannot write /proc/nope/x.", "choose a folder you can write to")


def test_atomic_write_converts_os_errors(tmp_path):
    from policytag.errors import OutputError
    from policytag.fileio import atomic_write_text

    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_text(tmp_path / "file" / "below.txt", "y")  # a file where a folder should be


@pytest.fixture
def umask027():
    old = os.umask(0o027)
    try:
        yield 0o640
    finally:
        os.umask(old)


def test_outputs_keep_the_users_umask(tmp_path, umask027, cli):
    """Was: 0600 for every atomically written file (mkstemp)."""
    import pandas as pd

    from policytag.clause import write_jsonl
    from policytag.data.corrections import CorrectionStore, export_corrections
    from policytag.serving import tagging

    rows = [{"doc_id": "d", "clause_id": "d#1", "text": "开展科普活动。", "themes": [], "measures": []}]
    written = [tagging.write_rows(rows, tmp_path / f"rows{ext}") for ext in (".jsonl", ".csv", ".xlsx")]
    written.append(tagging.write_xlsx(pd.DataFrame({"a": [1]}), tmp_path / "frame.xlsx"))
    written.append(tagging.write_summary(rows, tmp_path / "s.summary.csv"))
    write_jsonl(tmp_path / "c.jsonl", rows)
    written.append(tmp_path / "c.jsonl")
    store = CorrectionStore(tmp_path / "store.sqlite")
    store.add("开展科普活动。", ["youth"], [])
    for ext in (".jsonl", ".csv", ".xlsx"):
        export_corrections(store, tmp_path / f"export{ext}")
        written.append(tmp_path / f"export{ext}")
    doc = tmp_path / "doc.txt"
    doc.write_text(JIANGXI.read_text(encoding="utf-8"), encoding="utf-8")
    assert cli("segment", doc, "-o", tmp_path / "seg.jsonl", "--no-progress").code == 0
    written.append(tmp_path / "seg.jsonl")
    for p in written:
        assert stat.S_IMODE(p.stat().st_mode) == umask027, p


def test_one_place_writes_files_atomically():
    """Temporary files, renames over a target and spreadsheet writers live in policytag/fileio.py."""
    offenders = []
    for p in sorted(PACKAGE.rglob("*.py")):
        rel = p.relative_to(PACKAGE).as_posix()
        if rel == "fileio.py":
            continue
        src = p.read_text(encoding="utf-8")
        patterns = [r"mkstemp\(", r"\.to_csv\(", r"\.to_excel\("]
        if rel != "serving/exports.py":  # the app's styled workbook: every cell through fileio.safe_cell, bytes
            patterns += [r"csv\.(Dict)?[Ww]riter\(", r"Workbook\("]  # written by fileio.atomic_write_bytes
        for pattern in patterns:
            for m in re.finditer(pattern, src):
                offenders.append(f"{rel}:{src.count(chr(10), 0, m.start()) + 1}: {m.group()}")
    assert not offenders, offenders
