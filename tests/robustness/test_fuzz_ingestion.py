"""Fuzz ingestion + segmentation (Hypothesis, ~2,200 generated inputs, well under a minute).

Whatever a .txt/.md/.html file or pasted text holds (random bytes or unicode with CJK,
control characters, HTML-ish fragments, numbering markers, very long lines), reading it
either gives clean clauses (no U+FFFD, no control characters, spans that index the text)
or raises a ``PolicytagError`` with a message: never another exception, never a hang
(a per-example alarm, so a slow machine does not make it flaky: Hypothesis' own deadline
is off). Derandomized, so every run replays the same inputs.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policytag.errors import InputWarning, PolicytagError
from policytag.text.ingestion import document_from_text, load_document
from policytag.text.segmentation import segment

from .conftest import deadline

PER_EXAMPLE_S = 10  # a hang fails the example; a normal one takes milliseconds
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd\ud800-\udfff]")

# pieces that exercise the rules: Chinese policy text, numbering markers, headings, furniture,
# punctuation, control characters, replacement characters, odd spaces, HTML tags and entities
PIECES = ["加强科普工作，", "提升全民科学素质。", "到2025年，公民具备科学素质的比例达到15%。", "一、", "（二）", "(三)",
          "1.", "2、", "第一条", "第十二章", "#", "## ", "附件：", "责任单位：市科协", "首页 > 当前位置", "。", "；", "！",
          "？", "“", "”", "\n", "\n\n", "\r\n", "\t", " ", "\u3000", "\x00", "\x07", "\x1b[31m", "\x85", "\ufffd",
          "\ufeff", "\u200b", "◈★", "•", "?", "??破展ぷ", "xué", "<p>", "</p>", "<div class='content'>", "</div>",
          "<br>", "<h2>", "</h2>", "<script>x()</script>", "<td>", "</td>", "&amp;", "&#x4e2d;", "<!-- c -->", "<"]
texts = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF) | st.sampled_from("，。；：、\n 1一二（）"),
            max_size=600),
    st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=80).map("".join),
    st.tuples(st.sampled_from(["加", "科普", "a", "。", " ", "\n"]), st.integers(1, 20000)).map(lambda t: t[0] * t[1]),
)
ENCODINGS = ["utf-8", "utf-8-sig", "gb18030", "big5", "utf-16"]


def _check_document(doc, clauses) -> None:
    assert isinstance(doc.text, str)
    assert not BAD.search(doc.text), repr(BAD.search(doc.text).group())
    for c in clauses:
        assert c.text.strip(), c
        assert not BAD.search(c.text) and not BAD.search(c.context or ""), repr(c.text)
        a, b = c.span
        assert 0 <= a < b <= len(doc.text) and doc.text[a:b] == c.text, (c.span, c.text)


def _read(path: Path) -> None:
    try:
        with deadline(PER_EXAMPLE_S), warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)
            doc = load_document(path)
            clauses = segment(doc)
    except PolicytagError as e:
        assert str(e).strip(), "an error without a message"
        return
    _check_document(doc, clauses)


@settings(FUZZ, max_examples=600)
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".txt", ".html", ".md"]))
def test_fuzz_random_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"f{suffix}"
        p.write_bytes(data)
        _read(p)


@settings(FUZZ, max_examples=700)
@given(text=texts, encoding=st.sampled_from(ENCODINGS), suffix=st.sampled_from([".txt", ".md", ".html"]))
def test_fuzz_text_files(text, encoding, suffix):
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"f{suffix}"
        p.write_bytes(data)
        _read(p)


html_pages = st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=120).map(
    lambda parts: "<html><body>" + "".join(parts) + "</body></html>")


@settings(FUZZ, max_examples=600)
@given(page=html_pages | st.integers(1, 3000).map(lambda n: "<div>第一条 加强科普。" * n + "</div>" * n),
       encoding=st.sampled_from(["utf-8", "gb18030"]))
def test_fuzz_html(page, encoding):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f.html"
        p.write_bytes(page.encode(encoding, "replace"))
        _read(p)


@settings(FUZZ, max_examples=300)
@given(text=texts)
def test_fuzz_pasted_text(text):
    try:
        with deadline(PER_EXAMPLE_S), warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)
            doc = document_from_text(text)
            clauses = segment(doc)
    except PolicytagError as e:
        assert str(e).strip()
        return
    _check_document(doc, clauses)
