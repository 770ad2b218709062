"""Bounded work per input: deep HTML, zip bombs, oversized files, random bytes, stray bytes."""

from __future__ import annotations

import time
import warnings
import zipfile
from pathlib import Path

import pytest

from policytag.errors import InputError, InputWarning
from policytag.text import ingestion
from policytag.text.ingestion import load_document
from policytag.text.segmentation import segment

from .conftest import FIXTURES, JIANGXI, deadline

POLICY_DOCX = FIXTURES / "ingest" / "policy.docx"


def test_limits_come_from_the_predict_config():
    from policytag.config import load_config

    limits = load_config("predict")["limits"]
    assert {"max_bytes", "max_unzipped_bytes", "max_zip_ratio"} <= set(limits)
    assert ingestion.input_limits() == limits
    app = load_config("app")["limits"]
    assert {"max_bytes", "max_unzipped_bytes", "max_zip_ratio"} <= set(app)


@pytest.mark.parametrize("depth", [8000, 60000])
def test_deeply_nested_html_is_read_in_linear_time(tmp_path, depth):
    """8,000 nested <div> took 25 s (bs4 walks a subtree per append/.decomposed); 1 MB over 5 min."""
    html = "<html><body>" + "".join(f"<div class='content'>第{i}条加强科普。" for i in range(depth)) \
        + "</div>" * depth + "</body></html>"
    p = tmp_path / "deep.html"
    p.write_text(html, encoding="utf-8")
    assert depth < 10000 or p.stat().st_size > 1_000_000
    # a hang guard, not a speed target (the machine may be loaded): the quadratic parse took > 5 min
    with deadline(120):
        doc = load_document(p)
    assert "第0条加强科普。" in doc.text and f"第{depth - 1}条加强科普。" in doc.text


def _bomb_docx(path: Path, inflated: int) -> None:
    """policy.docx with word/document.xml padded (with spaces inside a run) to ``inflated`` bytes."""
    with zipfile.ZipFile(POLICY_DOCX) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename != "word/document.xml":
                dst.writestr(info, data)
                continue
            head, tail = data.split(b"</w:body>", 1)
            filler = inflated - len(data)
            with dst.open("word/document.xml", "w", force_zip64=True) as fh:
                fh.write(head + b"<w:p><w:r><w:t xml:space='preserve'>")
                chunk = b" " * (1 << 20)
                for _ in range(filler // len(chunk)):
                    fh.write(chunk)
                fh.write(b"</w:t></w:r></w:p></w:body>" + tail)


def test_zip_bomb_docx_is_refused_from_the_zip_directory(tmp_path):
    """document.xml inflating to 200 MB ran 400 s / 1.3 GB in python-docx."""
    bomb = tmp_path / "bomb.docx"
    _bomb_docx(bomb, 200 << 20)
    assert bomb.stat().st_size < 2 << 20
    t0 = time.perf_counter()
    with deadline(30):
        with pytest.raises(InputError, match=r"bomb\.docx: the \.docx inflates to 19\d\.\d MB.*max_unzipped_bytes"):
            load_document(bomb)
        # without the total cap, the compression ratio alone gives it away
        with pytest.raises(InputError, match=r"word/document\.xml inflates \d+ times.*zip bomb"):
            load_document(bomb, limits={"max_zip_ratio": 100})
    assert time.perf_counter() - t0 < 5
    assert [c.text for c in segment(load_document(POLICY_DOCX))]  # a real .docx still reads


def test_file_over_max_bytes_is_refused_before_reading(tmp_path, monkeypatch):
    from policytag.text import ingestion

    p = tmp_path / "big.txt"
    p.write_text(JIANGXI.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setitem(ingestion._READERS, "txt", lambda path: pytest.fail("read despite the limit"))
    with pytest.raises(InputError, match=r"big\.txt: the file is .* over the limit .*limits\.max_bytes"):
        load_document(p, limits={"max_bytes": "1kb"})


@pytest.mark.parametrize("suffix", [".html", ".txt", ".md", ".htm"])
def test_random_bytes_are_not_text(tmp_path, suffix):
    """Random bytes named .html came out as clauses of U+FFFD and control characters."""
    import random

    rng = random.Random(17)
    for i in range(10):
        p = tmp_path / f"r{i}{suffix}"
        p.write_bytes(bytes(rng.getrandbits(8) for _ in range(rng.choice([64, 800, 6000]))))
        with pytest.raises(InputError, match="does not look like text in a known encoding"):
            load_document(p)


def test_a_stray_byte_in_utf8_is_dropped_with_a_warning_saying_where(tmp_path):
    data = JIANGXI.read_bytes()
    line_start = data.index(b"\n", 2000) + 1  # a line boundary: the stray byte splits no character
    stray = data[:line_start] + b"\xff" + data[line_start:]
    p = tmp_path / "stray.txt"
    p.write_bytes(stray)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        doc = load_document(p)
    msgs = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    line = data[:line_start].count(b"\n") + 1
    assert msgs == [f"stray.txt: 1 byte(s) that are not valid UTF-8 were dropped, at line {line} "
                    f"(byte offset {line_start}); check the text there (re-save the file as UTF-8 to silence "
                    "this warning)"]
    assert doc.meta["warnings"] == msgs
    assert doc.text == load_document(JIANGXI).text  # nothing else changed
    assert "\ufffd" not in doc.text


def test_a_few_control_characters_are_dropped_with_a_warning(tmp_path):
    text = JIANGXI.read_text(encoding="utf-8")
    p = tmp_path / "ctl.txt"
    p.write_text(text[:500] + "\x07\ufffd" + text[500:], encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        doc = load_document(p)
    [msg] = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    assert "2 undecodable or control character(s) (U+0007, U+FFFD) dropped, first on line" in msg
    assert doc.text == load_document(JIANGXI).text


def test_predict_set_limits_reaches_ingestion_locally_and_on_ray_workers(cli, tiny_model_dir, tmp_path):
    p = tmp_path / "doc.txt"
    p.write_text(JIANGXI.read_text(encoding="utf-8"), encoding="utf-8")
    res = cli("predict", p, "--model", tiny_model_dir, "-o", tmp_path / "t.jsonl", "-q", "--set", "limits.max_bytes=1kb")
    assert res.code == 1 and "over the limit of 1024 bytes for one input (limits.max_bytes)" in res.err, res.err
    from policytag.serving.ray_engine import TaggerWorker

    worker = TaggerWorker(str(tiny_model_dir), limits={"max_bytes": 1024})
    got, skip = worker._clauses_of({"kind": "document", "path": str(p), "abspath": str(p)})
    assert got == [] and "limits.max_bytes" in skip
