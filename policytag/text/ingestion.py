"""Ingestion: a file (or pasted text) -> a :class:`Document` with clean text.

Supported inputs: ``.txt`` (and ``.text``/``.md``) in any common encoding (UTF-8 with or
without BOM, GB18030/GBK, Big5, UTF-16), ``.docx``, ``.pdf`` with a text layer,
``.html``/``.htm``, and text pasted as a string (:func:`document_from_text`). Extraction
here only gets the text out; every rule that changes it lives in
:mod:`policytag.text.normalization`. Anything that cannot be read raises
:class:`~policytag.errors.InputError` with a message that says what to do.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policytag.errors import InputError
from policytag.text.normalization import normalize, to_simplified

SUPPORTED_SUFFIXES = {".txt": "txt", ".text": "txt", ".md": "txt", ".markdown": "txt", ".docx": "docx", ".pdf": "pdf",
                      ".html": "html", ".htm": "html", ".xhtml": "html"}
_SUFFIX_HINTS = {
    ".doc": "old Word .doc files are not supported: save it as .docx (Word: File > Save As) and try again",
    ".wps": "WPS files are not supported: save it as .docx and try again",
    ".rtf": "RTF files are not supported: save it as .docx or .txt and try again",
    ".xls": "spreadsheets are not documents: export the text as .txt",
    ".xlsx": "spreadsheets are not documents: export the text as .txt",
    ".ofd": "OFD files are not supported: export it as PDF and try again",
    ".jsonl": "this looks like a clause file, not a document",
}


@dataclass
class Document:
    """A document ready for segmentation. ``text`` is the clean text (one paragraph per
    line); ``removed`` lists what normalization dropped (furniture, pinyin, ...)."""

    doc_id: str
    text: str
    source: str
    kind: str  # "txt" | "docx" | "pdf" | "html" | "text" (pasted)
    removed: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # encoding, pages, ...


# --------------------------------------------------------------------------- doc ids

_YEAR = re.compile(r"^(19|20)\d{2}$")
_UNSAFE_ID = re.compile(r"[\s/#\\?%*:|\"<>]+")


def doc_id_for(path: str | os.PathLike) -> str:
    """A stable doc id from a file name: the lower-cased stem; when its second
    dash-separated part is a year, only the first two parts
    (``kunshan-2023-kxsz-shishi.txt`` -> ``kunshan-2023``, ``chongqing-kxsz-shishi-newspaper.txt``
    -> ``chongqing-kxsz-shishi-newspaper``). Characters that clash with clause ids
    (``/`` ``#``, spaces, ...) become ``-``."""
    stem = Path(path).stem if not str(path).endswith("/") else Path(str(path).rstrip("/")).name
    stem = _UNSAFE_ID.sub("-", stem.strip().lower()).strip("-") or "document"
    parts = stem.split("-")
    if len(parts) >= 2 and _YEAR.match(parts[1]) and parts[0]:
        return f"{parts[0]}-{parts[1]}"
    return stem


# --------------------------------------------------------------------------- text files

# Very common Chinese characters, used to tell a right decoding from a wrong one.
_COMMON = set(
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所"
    "民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日"
    "那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想"
    "已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指"
    "几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权"
    "收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集"
    "温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支"
    "般史感劳便团往历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆"
    "包火住调满县局照参红细引听该铁价严龙飞普推服务施创"
)


def _decode_score(text: str) -> float:
    """Share of common Chinese characters among the Chinese characters (after t2s, so a
    correct Big5 decoding scores like a correct GBK one); -1 if the text has control junk."""
    if not text:
        return -1.0
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\n\r\t") or 0xE000 <= ord(ch) <= 0xF8FF or ch == "\ufffd")
    if bad > max(2, len(text) // 200):
        return -1.0

    han = [ch for ch in to_simplified(text[:20000], []) if "\u4e00" <= ch <= "\u9fff"]
    if not han:
        printable = sum(ch.isprintable() or ch in "\n\r\t" for ch in text)
        return 0.5 * printable / len(text)
    return sum(ch in _COMMON for ch in han) / len(han)


def decode_bytes(data: bytes, name: str = "input") -> tuple[str, str]:
    """Decode a text file's bytes; returns ``(text, encoding)``.

    BOMs are honoured (UTF-8, UTF-16, UTF-32). Otherwise strict UTF-8 is tried first, then
    GB18030 (a superset of GBK/GB2312), Big5, UTF-16 and charset-normalizer's best guess;
    among the encodings that decode without errors the one whose text has the highest
    share of common Chinese characters wins."""
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise InputError(f"{name}: the file is empty")
    for bom, enc in [(b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                     (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")]:
        if data.startswith(bom):
            try:
                return data.decode(enc), enc.replace("-sig", "") + " (BOM)"
            except UnicodeDecodeError:
                break
    nul_share = data.count(0) / len(data)
    if nul_share < 0.1:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    candidates = ["utf-16-le", "utf-16-be"] if nul_share >= 0.1 else ["gb18030", "big5", "utf-16-le", "utf-16-be"]
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:200000]).best()
        if best is not None and best.encoding not in candidates:
            candidates.append(best.encoding)
    except Exception:  # pragma: no cover - detection is only a hint
        pass
    scored = []
    for enc in candidates:
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        score = _decode_score(text)
        if score > 0.2:
            scored.append((score, -candidates.index(enc), enc, text))
    if not scored:
        raise InputError(
            f"{name}: cannot decode the text (not UTF-8, GB18030/GBK, Big5 or UTF-16, or not a text file); "
            "re-save it as UTF-8 and try again"
        )
    score, _, enc, text = max(scored)
    return text, enc


# --------------------------------------------------------------------------- extractors

def _read_txt(path: Path) -> tuple[str, dict]:
    text, enc = decode_bytes(path.read_bytes(), path.name)
    return text, {"encoding": enc}


_DOCX_HEADING = re.compile(r"^(?:Heading|标题)\s*(\d)$", re.I)


def _read_docx(path: Path) -> tuple[str, dict]:
    """Paragraphs and tables in document order. Paragraphs in a Heading style become
    Markdown headings; each table row becomes one line (cells joined by spaces)."""
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        d = docx.Document(str(path))
    except Exception as e:
        raise InputError(f"{path.name}: not a readable .docx file ({type(e).__name__}); "
                         "open and re-save it in Word or WPS as .docx") from None
    lines: list[str] = []
    for child in d.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            p = Paragraph(child, d)
            text = p.text.strip()
            if not text:
                continue
            style = p.style.name if p.style is not None else ""
            m = _DOCX_HEADING.match(style or "")
            lines.append(f"{'#' * int(m.group(1))} {text}" if m and int(m.group(1)) > 0 else text)
        elif tag == "tbl":
            for row in Table(child, d).rows:
                cells: list[str] = []
                for cell in row.cells:
                    t = cell.text.strip().replace("\n", " ")
                    if t and (not cells or cells[-1] != t):  # merged cells repeat
                        cells.append(t)
                if cells:
                    lines.append(" ".join(cells))
    return "\n\n".join(lines), {"paragraphs": len(lines)}


def _read_pdf(path: Path) -> tuple[str, dict]:
    try:
        import pdfplumber

        pages = []
        with pdfplumber.open(str(path)) as pdf:
            for page in pdf.pages:
                pages.append(page.extract_text() or "")
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{path.name}: cannot read the PDF ({type(e).__name__}: corrupt, truncated or "
                         "password-protected); open it in a PDF reader and save a fresh copy") from None
    text = "\n".join(pages)
    meta = {"pages": len(pages), "extractor": "pdfplumber"}
    if not re.search(r"\w", text):
        # pdfminer cannot read some embedded CID fonts (fpdf2 subsets, for one); pypdf can
        text = _read_pdf_pypdf(path)
        meta["extractor"] = "pypdf"
    if not re.search(r"\w", text):
        raise InputError(f"{path.name}: PDF has no text layer (scanned?): run OCR first "
                         "(e.g. ocrmypdf -l chi_sim in.pdf out.pdf) and try again")
    return text, meta


def _read_pdf_pypdf(path: Path) -> str:
    try:
        import pypdf

        reader = pypdf.PdfReader(str(path))
        return "\n".join((page.extract_text() or "") for page in reader.pages).replace("\x00", "")
    except Exception:
        return ""


_DROP_TAGS = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe",
              "button", "select", "input", "textarea", "svg", "template", "object"]
_FURNITURE_ATTR = re.compile(r"(^|[\s_-])(nav|navbar|menu|breadcrumbs?|crumbs?|footer|header|sidebar|share|"
                             r"toolbar|topbar|banner|location|position|weizhi|dqwz|copyright|links?|related|"
                             r"print|qrcode|ewm)($|[\s_-])", re.I)
_CONTENT_ATTR = re.compile(r"(content|article|zoom|trs_editor|main|detail|text|zwnr|pages_content|body)", re.I)
_BLOCK_TAGS = ["p", "div", "li", "tr", "table", "section", "article", "main", "ul", "ol", "dd", "dt",
               "blockquote", "pre", "center"]


def _read_html(path: Path) -> tuple[str, dict]:
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path.name}: the file is empty")
    try:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(data, "lxml")
    except Exception as e:
        raise InputError(f"{path.name}: cannot parse the HTML ({type(e).__name__})") from None
    return html_to_text(soup), {"encoding": getattr(soup, "original_encoding", None)}


def html_to_text(soup) -> str:
    """Main text of a parsed page: navigation, headers, footers, scripts and elements whose
    class/id says navigation, breadcrumb, share or footer are dropped; the largest
    content container (``<article>``, ``<main>``, ``#content``, ``.TRS_Editor`` ...) is kept if
    there is one. ``<h1>``-``<h6>`` become Markdown headings; block elements end a line."""
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all(True):
        if tag.decomposed if hasattr(tag, "decomposed") else False:
            continue
        attrs = getattr(tag, "attrs", None) or {}
        ident = " ".join([attrs.get("id", "") or ""] + list(attrs.get("class", []) or []))
        if ident and _FURNITURE_ATTR.search(ident) and not _CONTENT_ATTR.search(ident):
            tag.decompose()
    body = soup.body or soup
    candidates = [t for t in body.find_all(["article", "main"])]
    for t in body.find_all(True):
        attrs = getattr(t, "attrs", None) or {}
        ident = " ".join([attrs.get("id", "") or ""] + list(attrs.get("class", []) or []))
        if ident and _CONTENT_ATTR.search(ident):
            candidates.append(t)
    root = body
    if candidates:
        best = max(candidates, key=lambda t: len(t.get_text(strip=True)))
        if len(best.get_text(strip=True)) >= 0.3 * len(body.get_text(strip=True)):
            root = best
    for br in root.find_all("br"):
        br.replace_with("\n")
    for level in range(1, 7):
        for h in root.find_all(f"h{level}"):
            h.insert(0, "\n" + "#" * level + " ")
            h.append("\n")
    for tag in root.find_all(_BLOCK_TAGS):
        tag.append("\n")
    for cell in root.find_all(["td", "th"]):
        cell.append(" ")
    text = root.get_text("")
    return "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n"))


_READERS = {"txt": _read_txt, "docx": _read_docx, "pdf": _read_pdf, "html": _read_html}


# --------------------------------------------------------------------------- public API

def load_document(path: str | os.PathLike, doc_id: str | None = None) -> Document:
    """Read a file and return its clean :class:`Document`. Raises :class:`InputError`
    (missing, empty, unsupported type, undecodable, corrupt, PDF without text layer)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory (pass the files inside, or use `policytag segment DIR`)")
    suffix = path.suffix.lower()
    kind = SUPPORTED_SUFFIXES.get(suffix)
    if kind is None:
        hint = _SUFFIX_HINTS.get(suffix, "supported types are .txt, .docx, .pdf and .html")
        raise InputError(f"{path.name}: unsupported file type {suffix or '(no extension)'!r}; {hint}")
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty")
    raw, meta = _READERS[kind](path)
    text, removed = normalize(raw, kind=kind)
    if not text.strip():
        raise InputError(f"{path.name}: no document text left after removing page furniture "
                         f"({len(removed)} lines removed); is this the right file?")
    return Document(doc_id or doc_id_for(path), text, str(path), kind, removed, meta)


def document_from_text(text: str, doc_id: str = "pasted", name: str | None = None) -> Document:
    """A :class:`Document` from pasted text (same normalization as files)."""
    if text is None or not str(text).strip():
        raise InputError("no text given: paste the text of a policy document")
    clean, removed = normalize(str(text), kind="text")
    if not clean.strip():
        raise InputError("no document text left after removing page furniture; paste the body of the document")
    return Document(doc_id, clean, name or "<pasted>", "text", removed, {})


# --------------------------------------------------------------------------- sources with metadata

#: Metadata keys copied from a source's meta.json / meta.yaml entry onto every clause.
SOURCE_META_KEYS = ("title", "genre", "level", "year")
_PART_FILE = re.compile(r"^part-(\d+)\.(txt|text|md|html?|docx|pdf)$", re.I)


_TITLE_NOTE = re.compile(r"\s*(?:[—–-]{1,2}\s.*|\s\(.*|[(（][^()（）]*(?:〔|\[|[A-Za-z])[^()（）]*[)）]\s*)$")


def clean_title(title: str) -> str:
    """A metadata title as the document itself would print it: the curator's notes
    (`` (title inferred)``, `` — news report (...)``) and issuing numbers (``(财关税〔2021〕26号)``) removed."""
    t = title.strip()
    for _ in range(3):
        new = _TITLE_NOTE.sub("", t).strip()
        if new == t or not new:
            break
        t = new
    return to_simplified(t, []) if t else t


def _source_meta(raw: dict) -> dict:
    meta = {"doc_title": clean_title(str(raw.get("title") or "")), "genre": str(raw.get("genre") or ""),
            "level": str(raw.get("level") or "")}
    year = raw.get("year")
    try:
        meta["year"] = int(year) if year not in (None, "") else None
    except (TypeError, ValueError):
        meta["year"] = None
    return meta


def _seed_meta_entry(path: Path) -> tuple[str, dict]:
    """(doc id, meta.yaml entry) for a seed file; the entry is matched by its ``file`` key,
    else by the doc id; no entry -> empty metadata."""
    doc_id = doc_id_for(path)
    meta_file = path.parent / "meta.yaml"
    if not meta_file.exists():
        return doc_id, {}
    import yaml

    entries = yaml.safe_load(meta_file.read_text(encoding="utf-8")) or {}
    for did, entry in entries.items():
        if isinstance(entry, dict) and entry.get("file") == path.name:
            return str(did), entry
    return doc_id, entries.get(doc_id) or {}


def load_source(path: str | os.PathLike) -> Document:
    """Load a document together with its metadata.

    - a corpus folder (``labels/sources/corpus/<slug>/``): ``meta.json`` plus ``raw.txt``, or
      every ``part-NN.txt`` in numeric order; ``doc_id`` is the folder name. Parts are
      normalized one by one and joined with a line break; ``Document.meta["parts"]`` holds
      the ``(start, end)`` offset of each part in the clean text, so :func:`segment` builds a
      fresh heading tree per part and prefixes its provision ids with ``pt<k>.``
      (``chongqing-2008-kepu-tiaoli/pt2.22#1``): ids stay unique across parts.
    - a seed file (``labels/sources/*.txt``): its entry in ``meta.yaml`` next to it (the
      entry whose ``file`` is the file name, or whose key is the doc id).

    ``Document.meta["source_meta"]`` is ``{doc_title, genre, level, year}``; segmentation
    copies it onto every clause."""
    import json as _json

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_file():
        doc_id, entry = _seed_meta_entry(path)
        doc = load_document(path, doc_id=doc_id)
        doc.meta["source_meta"] = _source_meta(entry)
        return doc
    meta_file = path / "meta.json"
    raw_meta = _json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
    doc_id = _UNSAFE_ID.sub("-", path.name.strip().lower()).strip("-")
    parts = sorted((p for p in path.iterdir() if _PART_FILE.match(p.name)),
                   key=lambda p: int(_PART_FILE.match(p.name).group(1)))
    if not parts:
        raw = next((path / n for n in ("raw.txt", "raw.html", "raw.md") if (path / n).exists()), None)
        if raw is None:
            raise InputError(f"{path}: no raw.txt or part-NN.txt in the folder")
        doc = load_document(raw, doc_id=doc_id)
    else:
        texts, removed, bounds, pos = [], [], [], 0
        for p in parts:
            d = load_document(p, doc_id=doc_id)
            texts.append(d.text)
            removed.extend(d.removed)
            bounds.append((pos, pos + len(d.text)))
            pos += len(d.text) + 1
        doc = Document(doc_id, "\n".join(texts), str(path), "txt", removed,
                       {"parts": bounds, "part_files": [p.name for p in parts]})
    doc.source = str(path)
    doc.meta["source_meta"] = _source_meta(raw_meta)
    return doc
