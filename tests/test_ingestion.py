"""Ingestion: every input type, every failure, doc ids, and the `policytag segment` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from policytag.errors import InputError
from policytag.text.ingestion import decode_bytes, doc_id_for, document_from_text, load_document
from policytag.text.segmentation import segment

FIXTURES = Path(__file__).parent / "fixtures"
INGEST = FIXTURES / "ingest"
SEEDS = sorted(FIXTURES.glob("*.txt"))

# what every rendering of the sample policy (make_fixtures.py) must segment into
EXPECTED_TEXTS = [
    "坚持以人民为中心，提升全民科学素质。",
    "到2025年，公民具备科学素质的比例达到15%。",
    "(一)加强青少年科学教育。",
    "将科学教育纳入课后服务。",
    "每年举办科技节。",
    "1.开展农民技能培训。",
    "每年培训农民1000人次。",
    "2.建设乡村科普站。",
    "加大科普经费投入，将科普经费列入财政预算。",
]


def texts(doc):
    return [c.text for c in segment(doc)]


# --------------------------------------------------------------------------- doc ids

@pytest.mark.parametrize("name, doc_id", [
    ("kunshan-2023-kxsz-shishi.txt", "kunshan-2023"),
    ("cast-2021-xuehui-kepu-pinyin-garbled.txt", "cast-2021"),
    ("chongqing-kxsz-shishi-newspaper.txt", "chongqing-kxsz-shishi-newspaper"),
    ("dir/Sichuan-2023-Kepu.PDF", "sichuan-2023"),
    ("昆山 实施方案#2.docx", "昆山-实施方案-2"),
    ("report.html", "report"),
])
def test_doc_id_for(name, doc_id):
    assert doc_id_for(name) == doc_id


# --------------------------------------------------------------------------- text encodings

@pytest.mark.parametrize("name, encoding", [
    ("policy_utf8_bom.txt", "utf-8 (BOM)"),
    ("policy_gb18030.txt", "gb18030"),
    ("policy_big5.txt", "big5"),
    ("policy_utf16.txt", "utf-16 (BOM)"),
])
def test_txt_encodings(name, encoding):
    doc = load_document(INGEST / name)
    assert doc.kind == "txt" and doc.meta["encoding"] == encoding
    assert texts(doc) == EXPECTED_TEXTS
    assert "关于加强基层科普工作的实施意见" in doc.text  # Big5 came out Simplified


def test_utf16_without_bom_and_gbk(tmp_path):
    sample = (INGEST / "policy_utf8_bom.txt").read_text(encoding="utf-8-sig")
    (tmp_path / "a.txt").write_bytes(sample.encode("utf-16-le"))
    (tmp_path / "b.txt").write_bytes(sample.encode("gbk"))
    assert texts(load_document(tmp_path / "a.txt")) == EXPECTED_TEXTS
    assert texts(load_document(tmp_path / "b.txt")) == EXPECTED_TEXTS


def test_decode_bytes_prefers_correct_chinese():
    text = "关于加强科普工作的意见。各单位要认真贯彻落实，开展科学素质提升行动。" * 3
    assert decode_bytes(text.encode("gb18030"))[1] == "gb18030"
    assert decode_bytes(text.encode("utf-8"))[1] == "utf-8"


def test_seed_files_are_utf8():
    for path in SEEDS:
        assert load_document(path).meta["encoding"] in {"utf-8", "utf-8 (BOM)"}


# --------------------------------------------------------------------------- docx, html, pdf

def test_docx_paragraphs_headings_and_tables():
    doc = load_document(INGEST / "policy.docx")
    assert doc.kind == "docx"
    clauses = segment(doc)
    got = [c.text for c in clauses]
    assert got[:8] == EXPECTED_TEXTS[:8]
    assert "3.组织科技下乡活动。" in got  # from the table
    by = {c.text: c for c in clauses}
    assert by["2.建设乡村科普站。"].agencies == ["市农业农村局"]
    assert by["2.建设乡村科普站。"].context == "二、重点任务 > (二)实施农民科学素质提升行动"
    assert by["(一)加强青少年科学教育。"].agencies == ["市教育局", "市科协", "各区县"]


def test_html_main_text_without_furniture():
    doc = load_document(INGEST / "policy.html")
    assert doc.kind == "html"
    assert texts(doc) == EXPECTED_TEXTS
    for junk in ["首页", "信息公开", "当前位置", "热点新闻", "版权所有", "统计代码", "分享到", "访问量", "科学技术协会"]:
        assert junk not in doc.text, junk


def test_html_gbk_with_meta_charset(tmp_path):
    html = ("<html><head><meta http-equiv='Content-Type' content='text/html; charset=gbk'></head><body>"
            "<div class='TRS_Editor'><p>一、总体要求</p><p>加强科普工作，提升全民科学素质。</p></div></body></html>")
    (tmp_path / "p.htm").write_bytes(html.encode("gbk"))
    assert texts(load_document(tmp_path / "p.htm")) == ["加强科普工作，提升全民科学素质。"]


def test_pdf_with_text_layer_reflowed_and_rejoined():
    doc = load_document(INGEST / "policy_text_layer.pdf")
    assert doc.kind == "pdf" and doc.meta["extractor"] == "pdfplumber"
    assert texts(doc) == EXPECTED_TEXTS
    assert doc.text.startswith("关于加强基层科普工作的实施意见")  # spaced-out title re-joined
    assert any(r.startswith("page number") for r in doc.removed)


def test_pdf_embedded_cjk_subset_read_with_fallback():
    doc = load_document(INGEST / "fpdf2_cjk.pdf")
    assert texts(doc) == ["(一)提升基层科普服务能力。", "构建以社区服务中心为阵地的基层科普工作体系。"]


# --------------------------------------------------------------------------- failures

def test_scanned_pdf_has_no_text_layer():
    with pytest.raises(InputError, match=r"PDF has no text layer \(scanned\?\): run OCR first"):
        load_document(INGEST / "scanned.pdf")


def test_corrupt_pdf():
    with pytest.raises(InputError, match="cannot read the PDF"):
        load_document(INGEST / "corrupt.pdf")


def test_empty_files(tmp_path):
    for name, data in [("e.txt", b""), ("w.txt", b"  \n\r\n "), ("b.txt", b"\xef\xbb\xbf\n"), ("e.html", b"")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match="empty"):
            load_document(tmp_path / name)


def test_unsupported_types(tmp_path):
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match=r"unsupported file type '\.doc'.*save it as \.docx"):
        load_document(tmp_path / "old.doc")
    with pytest.raises(InputError, match=r"unsupported file type '\.png'"):
        load_document(tmp_path / "x.png")


def test_undecodable_bytes(tmp_path):
    (tmp_path / "bin.txt").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError, match="cannot decode"):
        load_document(tmp_path / "bin.txt")


def test_corrupt_docx(tmp_path):
    (tmp_path / "bad.docx").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="not a readable .docx"):
        load_document(tmp_path / "bad.docx")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_document(tmp_path / "nope.txt")
    with pytest.raises(InputError, match="is a directory"):
        load_document(tmp_path)


def test_only_furniture_left(tmp_path):
    (tmp_path / "nav.txt").write_text("首页 / 信息公开\n扫一扫在手机打开当前页\n", encoding="utf-8")
    with pytest.raises(InputError, match="no document text left"):
        load_document(tmp_path / "nav.txt")


# --------------------------------------------------------------------------- pasted text

def test_document_from_text():
    doc = document_from_text("各有关单位：\n一、任务\n加强科普◈★，提升素質(zhì)。", doc_id="p1")
    assert (doc.doc_id, doc.kind, doc.source) == ("p1", "text", "<pasted>")
    assert doc.text == "一、任务\n加强科普，提升素质。"
    assert [c.clause_id for c in segment(doc)] == ["p1/1.p1#1"]


@pytest.mark.parametrize("bad", ["", "   \n ", None])
def test_document_from_text_empty(bad):
    with pytest.raises(InputError, match="no text given"):
        document_from_text(bad)


# --------------------------------------------------------------------------- the segment command

@pytest.fixture
def app():
    from policytag.cli import segment as commands_segment

    app = typer.Typer()

    @app.callback()
    def main():  # keep `segment` a subcommand
        pass

    commands_segment.register(app)
    return app


def test_segment_command_batch_with_bad_files(app, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    out = tmp_path / "clauses.jsonl"
    inputs = [str(SEEDS[0]), str(INGEST / "scanned.pdf"), str(tmp_path / "empty.txt"),
              str(INGEST / "policy.docx"), str(tmp_path / "missing.txt")]
    result = CliRunner().invoke(app, ["segment", *inputs, "-o", str(out), "--no-progress"])
    assert result.exit_code == 1, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {r["doc_id"] for r in rows} == {"cast-2021", "policy"}
    assert set(rows[0]) - {"doc_title", "genre", "level", "year"} == {"doc_id", "clause_id", "text", "context", "provision_id", "span", "agencies"}
    log = result.stderr
    assert "cast-2021" in log and "scanned.pdf" in log and "run OCR first" in log
    assert "empty.txt" in log and "missing.txt" in log and "no such file" in log


def test_segment_command_directory_out_dir_and_stdout(app, tmp_path):
    result = CliRunner().invoke(app, ["segment", str(FIXTURES), "--out-dir", str(tmp_path / "w"),
                                      "--suffix", ".unlabeled.jsonl", "--no-progress"])
    # the ingest/ folder holds a scanned and a corrupt PDF: reported, the rest written
    assert result.exit_code == 1
    written = sorted(p.name for p in (tmp_path / "w").iterdir())
    assert "kunshan-2023.unlabeled.jsonl" in written and "policy_gb18030.unlabeled.jsonl" in written
    assert "corrupt.pdf" in result.stderr and "scanned.pdf" in result.stderr

    ok = CliRunner().invoke(app, ["segment", str(SEEDS[0]), "--no-progress"])
    assert ok.exit_code == 0
    first = json.loads(ok.stdout.splitlines()[0])
    assert first["clause_id"].startswith("cast-2021/")


def test_segment_command_stdin(app):
    result = CliRunner().invoke(app, ["segment", "-", "--doc-id", "clip"], input="一、任务\n开展科普活动。\n")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["clause_id"] == "clip/1.p1#1"


# --------------------------------------------------------------------------- sources with metadata

def test_load_source_corpus_folder_with_parts(tmp_path):
    from policytag.clause import Clause
    from policytag.text.ingestion import load_source
    from policytag.text.segmentation import segment

    d = tmp_path / "demo-2008-tiaoli"
    d.mkdir()
    (d / "meta.json").write_text(json.dumps({"title": "某市科学技术普及条例", "genre": "tiaoli",
                                             "level": "city", "year": "2008"}, ensure_ascii=False), encoding="utf-8")
    (d / "part-01.txt").write_text("第一章 总则第一条 为加强科普工作，制定本条例。第二条 本条例适用于本市。", encoding="utf-8")
    (d / "part-02.txt").write_text("第一章 总则\n第一条 重复编号的另一页。", encoding="utf-8")
    doc = load_source(d)
    assert doc.doc_id == "demo-2008-tiaoli"
    clauses = segment(doc)
    ids = [c.clause_id for c in clauses]
    assert len(ids) == len(set(ids)) == 3
    assert ids[0].startswith("demo-2008-tiaoli/pt1.") and ids[-1].startswith("demo-2008-tiaoli/pt2.")
    for c in clauses:
        assert doc.text[c.span[0]:c.span[1]] == c.text
        assert (c.doc_title, c.genre, c.level, c.year) == ("某市科学技术普及条例", "tiaoli", "city", 2008)
    back = Clause.from_dict(json.loads(json.dumps(clauses[0].to_dict(labels=False))))
    assert back.doc_title == "某市科学技术普及条例" and back.year == 2008


def test_load_source_seed_file_uses_meta_yaml():
    from policytag.text.ingestion import load_source

    sources = Path(__file__).resolve().parents[1] / "labels" / "sources"
    doc = load_source(sources / "kunshan-2023-kxsz-shishi.txt")
    assert doc.doc_id == "kunshan-2023"
    assert doc.meta["source_meta"]["genre"] == "kxsz-plan" and doc.meta["source_meta"]["year"] == 2023


def test_clause_without_metadata_still_loads_and_serializes_unchanged():
    from policytag.clause import Clause

    d = {"doc_id": "x", "clause_id": "x/p1#1", "text": "加强科普。", "context": "", "provision_id": "x/p1",
         "span": [0, 5], "agencies": []}
    c = Clause.from_dict(d)
    assert c.doc_title == "" and c.year is None
    assert c.to_dict(labels=False) == d
