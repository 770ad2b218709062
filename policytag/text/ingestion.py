"""Ingestion: a file (or pasted text) -> a :class:`Document` with clean text.

Supported inputs: ``.txt`` (and ``.text``/``.md``) in any common encoding (UTF-8 with or
without BOM, GB18030/GBK, Big5, UTF-16), ``.docx``, ``.pdf`` with a text layer,
``.html``/``.htm``, and text pasted as a string (:func:`document_from_text`). Extraction
here only gets the text out; every rule that changes it lives in
:mod:`policytag.text.normalization`. Anything that cannot be read raises
:class:`~policytag.errors.InputError` with a message that says what to do.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policytag.errors import InputError, InputWarning
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


def decode_bytes(data: bytes, name: str = "input", notes: list[str] | None = None) -> tuple[str, str]:
    """Decode a text file's bytes; returns ``(text, encoding)``.

    BOMs are honoured (UTF-8, UTF-16, UTF-32). Otherwise strict UTF-8 is tried first, then
    GB18030 (a superset of GBK/GB2312), Big5, UTF-16 and charset-normalizer's best guess;
    among the encodings that decode without errors the one whose text has the highest
    share of common Chinese characters wins.

    When none does, a file that is UTF-8 but for a few stray bytes (at most one in a
    thousand) is read as UTF-8 without them, and a warning naming their line and byte
    offset is appended to ``notes``; anything else is refused."""
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
    if not scored and nul_share < 0.1:
        lenient = _utf8_without_stray_bytes(data, name)
        if lenient is not None:
            text, note = lenient
            if notes is not None:
                notes.append(note)
            return text, "utf-8 (stray bytes dropped)"
    if not scored:
        raise InputError(
            f"{name}: this file does not look like text in a known encoding: cannot decode it as UTF-8, "
            "GB18030/GBK, Big5 or UTF-16; is it really a text file? Re-save it as UTF-8 text and try again"
        )
    score, _, enc, text = max(scored)
    return text, enc


def _utf8_without_stray_bytes(data: bytes, name: str) -> tuple[str, str] | None:
    """``(text, warning)`` when ``data`` is UTF-8 except for a few invalid bytes, else None."""
    limit = max(3, len(data) // 1000)
    escaped = data.decode("utf-8", errors="surrogateescape")  # each invalid byte -> U+DC80..U+DCFF
    runs = list(_ESCAPED.finditer(escaped))
    if not runs or len(runs) > limit:
        return None
    text = _ESCAPED.sub("", escaped)
    if _decode_score(text) <= 0.2:
        return None
    offsets, pos, off = [], 0, 0
    for m in runs[:3]:
        off += len(escaped[pos:m.start()].encode("utf-8", "surrogateescape"))
        offsets.append(off)
        off += m.end() - m.start()
        pos = m.end()
    n = sum(m.end() - m.start() for m in runs)
    newline = b"\n"
    where = ", ".join(f"line {data.count(newline, 0, o) + 1} (byte offset {o})" for o in offsets)
    more = f" and {len(runs) - 3} more places" if len(runs) > 3 else ""
    return text, (f"{name}: {n} byte(s) that are not valid UTF-8 were dropped, at {where}{more}; "
                  "check the text there (re-save the file as UTF-8 to silence this warning)")


_ESCAPED = re.compile("[\udc80-\udcff]+")


# --------------------------------------------------------------------------- extractors

def _read_txt(path: Path) -> tuple[str, dict]:
    notes: list[str] = []
    text, enc = decode_bytes(path.read_bytes(), path.name, notes)
    meta: dict[str, Any] = {"encoding": enc}
    if notes:
        meta["warnings"] = notes
    return text, meta


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
    there is one. ``<h1>``-``<h6>`` become Markdown headings; block elements end a line.

    Linear in the size of the page, however deeply it nests: every pass is one walk over
    the tree (bs4's ``append``/``get_text``/``.decomposed`` cost a walk of the subtree per
    call, which made 8,000 nested ``<div>`` take half a minute)."""
    for tag in soup(_DROP_TAGS):
        if not _decomposed(tag):  # a drop tag inside another one went with it
            tag.decompose()
    for tag in soup.find_all(True):
        if _decomposed(tag):
            continue
        attrs = getattr(tag, "attrs", None) or {}
        ident = " ".join([attrs.get("id", "") or ""] + list(attrs.get("class", []) or []))
        if ident and _FURNITURE_ATTR.search(ident) and not _CONTENT_ATTR.search(ident):
            tag.decompose()
    body = soup.body or soup
    types = body.interesting_string_types
    lengths = _stripped_lengths(body, types)  # len(t.get_text(strip=True)) of every tag, in one pass
    candidates = [t for t in body.find_all(["article", "main"])]
    for t in body.find_all(True):
        attrs = getattr(t, "attrs", None) or {}
        ident = " ".join([attrs.get("id", "") or ""] + list(attrs.get("class", []) or []))
        if ident and _CONTENT_ATTR.search(ident):
            candidates.append(t)
    root = body
    if candidates:
        best = max(candidates, key=lambda t: lengths[id(t)])
        if lengths[id(best)] >= 0.3 * lengths[id(body)]:
            root = best
    text = _render_text(root, types)
    return "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n"))


def _decomposed(tag) -> bool:
    # not ``tag.decomposed``: bs4 resolves that attribute by searching the whole subtree
    return bool(vars(tag).get("_decomposed", False))


def _is_text(node, types) -> bool:
    return (type(node) is types) if isinstance(types, type) else (type(node) in types)


def _stripped_lengths(root, types) -> dict[int, int]:
    """``id(tag) -> len(tag.get_text(strip=True))`` for ``root`` and every tag below it."""
    from bs4 import Tag

    lengths: dict[int, int] = {}
    stack: list = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            lengths[id(node)] = sum(lengths.get(id(c), 0) if isinstance(c, Tag)
                                    else (len(c.strip()) if _is_text(c, types) else 0) for c in node.contents)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in node.contents if isinstance(c, Tag))
    return lengths


def _render_text(root, types) -> str:
    """The text of ``root``'s children: ``<br>`` is a line break, ``<hN>`` a Markdown heading on
    its own line, a block element ends a line and a table cell ends with a space."""
    from bs4 import Tag

    out: list[str] = []
    stack: list = [c for c in reversed(root.contents)]
    while stack:
        node = stack.pop()
        if not isinstance(node, Tag):
            if type(node) is _Suffix or _is_text(node, types):
                out.append(str(node))
            continue
        name = node.name
        if name == "br":
            out.append("\n")
            continue
        level = _HEADING_LEVEL.get(name)
        suffix = "\n" if level else ("\n" if name in _BLOCK_SET else (" " if name in ("td", "th") else ""))
        if level:
            out.append("\n" + "#" * level + " ")
        if suffix:
            stack.append(_Suffix(suffix))
        stack.extend(reversed(node.contents))
    return "".join(out)


class _Suffix(str):
    """What a closing tag adds to the text (kept apart from the page's own strings)."""


_HEADING_LEVEL = {f"h{i}": i for i in range(1, 7)}
_BLOCK_SET = frozenset(_BLOCK_TAGS)


_READERS = {"txt": _read_txt, "docx": _read_docx, "pdf": _read_pdf, "html": _read_html}


# --------------------------------------------------------------------------- public API

def load_document(path: str | os.PathLike, doc_id: str | None = None, *,
                  limits: dict[str, Any] | None = None) -> Document:
    """Read a file and return its clean :class:`Document`. Raises :class:`InputError`
    (missing, empty, too large, unsupported type, undecodable, not text, corrupt, PDF without
    text layer).

    ``limits`` (default: the ``limits`` section of ``configs/predict.yaml``) bounds the work
    one input may cause; they are checked on the file before anything is extracted:
    ``max_bytes`` (the file on disk), and for ``.docx`` (a zip archive) ``max_unzipped_bytes``
    (its parts once decompressed, read from the zip directory) and ``max_zip_ratio``. Sizes
    are bytes or strings such as ``20mb``; a missing or null key means no limit.

    Text that is mostly undecodable bytes (U+FFFD) or control characters is refused; a few
    such characters are dropped, and a :class:`~policytag.errors.InputWarning` says where.
    """
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
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name}: the file is empty")
    lim = input_limits() if limits is None else limits
    max_bytes = parse_size(lim.get("max_bytes"), "limits.max_bytes")
    if max_bytes is not None and size > max_bytes:
        raise InputError(f"{path.name}: the file is {_mb(size)}, over the limit of {_mb(max_bytes)} for one input "
                         "(limits.max_bytes); split it, or raise the limit with --set limits.max_bytes=...")
    if kind == "docx":
        check_zip(path, lim)
    raw, meta = _READERS[kind](path)
    notes = list(meta.pop("warnings", []))
    raw = collapse_blank_runs(screen_text(raw, path.name, notes))
    text, removed = normalize(raw, kind=kind)
    if not text.strip():
        raise InputError(f"{path.name}: no document text left after removing page furniture "
                         f"({len(removed)} lines removed); is this the right file?")
    _warn(notes, meta)
    return Document(doc_id or doc_id_for(path), text, str(path), kind, removed, meta)


def document_from_text(text: str, doc_id: str = "pasted", name: str | None = None) -> Document:
    """A :class:`Document` from pasted text (same normalization and screening as files)."""
    if text is None or not str(text).strip():
        raise InputError("no text given: paste the text of a policy document")
    notes: list[str] = []
    raw = collapse_blank_runs(screen_text(str(text), name or "the pasted text", notes))
    clean, removed = normalize(raw, kind="text")
    if not clean.strip():
        raise InputError("no document text left after removing page furniture; paste the body of the document")
    meta: dict[str, Any] = {}
    _warn(notes, meta)
    return Document(doc_id, clean, name or "<pasted>", "text", removed, meta)


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
    meta: dict[str, Any] = {"doc_title": clean_title(str(raw.get("title") or "")), "genre": str(raw.get("genre") or ""),
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
                   key=_part_number)
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


# --------------------------------------------------------------------------- bounds

# Text whose share of these characters is above BAD_CHAR_SHARE is not text in a known
# encoding (random bytes named .html come out of the HTML decoder as U+FFFD and C0/C1 codes).
BAD_CHAR_SHARE = 0.02
_BAD_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd\ud800-\udfff]")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.I)
_ZIP_RATIO_MIN_PART = 1 << 20  # parts under 1 MiB inflate as they like (XML compresses well)


@functools.lru_cache(maxsize=1)
def _default_limits() -> tuple[tuple[str, Any], ...]:
    from policytag.config import load_config

    return tuple(sorted((load_config("predict").get("limits") or {}).items()))


def input_limits() -> dict[str, Any]:
    """The default per-input limits: the ``limits`` section of ``configs/predict.yaml``."""
    return dict(_default_limits())


def parse_size(value: Any, key: str = "size") -> int | None:
    """Bytes from ``1048576``, ``"20mb"``, ``"1.5 GiB"``...; None (no limit) for None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InputError(f"{key}: expected a size such as 20mb, got {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    m = _SIZE.match(str(value))
    if not m:
        raise InputError(f"{key}: expected a size such as 20mb or 1048576, got {value!r}")
    unit = (m.group(2) or "b").lower()[0]
    return int(float(m.group(1)) * {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit])


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB" if n >= 1 << 20 else f"{n} bytes"


def check_zip(path: Path, limits: dict[str, Any]) -> None:
    """Refuse a zip-based document (``.docx``) that would inflate too far, from its directory
    alone (the declared sizes bound what :mod:`zipfile` will ever decompress)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise InputError(f"{path.name}: not a readable .docx file ({type(e).__name__}); "
                         "open and re-save it in Word or WPS as .docx") from None
    total = sum(i.file_size for i in infos)
    max_total = parse_size(limits.get("max_unzipped_bytes"), "limits.max_unzipped_bytes")
    if max_total is not None and total > max_total:
        raise InputError(f"{path.name}: the .docx inflates to {_mb(total)}, over the limit of {_mb(max_total)} "
                         "(limits.max_unzipped_bytes); is it a real document? Save the text as .docx again, "
                         "or raise the limit with --set limits.max_unzipped_bytes=...")
    ratio = limits.get("max_zip_ratio")
    if ratio is not None:
        for i in infos:
            if i.file_size >= _ZIP_RATIO_MIN_PART and i.file_size > float(ratio) * max(i.compress_size, 1):
                raise InputError(
                    f"{path.name}: part {i.filename} inflates {i.file_size / max(i.compress_size, 1):.0f} times "
                    f"(to {_mb(i.file_size)}), more than limits.max_zip_ratio={ratio}: this looks like a zip "
                    "bomb, not a document; open and re-save it in Word or WPS as .docx")


def _part_number(p: Path) -> int:
    m = _PART_FILE.match(p.name)
    assert m is not None  # only matching names are sorted
    return int(m.group(1))


def screen_text(text: str, name: str, notes: list[str]) -> str:
    """Refuse text that is mostly undecodable bytes or control characters; drop a few.

    What is dropped is reported in ``notes`` with the line where it first occurs."""
    bad = _BAD_CHARS.findall(text)
    if not bad:
        return text
    visible = sum(1 for ch in text if not ch.isspace()) or 1
    share = len(bad) / visible
    if share > BAD_CHAR_SHARE and len(bad) > 2:
        raise InputError(
            f"{name}: this file does not look like text in a known encoding: {share:.0%} of its characters are "
            "undecodable bytes (U+FFFD) or control characters; is it really a text document of this type? "
            "Re-save it as UTF-8 text (or .docx/.pdf) and try again")
    first_bad = _BAD_CHARS.search(text)
    assert first_bad is not None  # bad is not empty
    first = first_bad.start()
    line = text.count("\n", 0, first) + 1
    kinds = sorted({"U+FFFD" if ch == "\ufffd" else f"U+{ord(ch):04X}" for ch in bad})
    notes.append(f"{name}: {len(bad)} undecodable or control character(s) ({', '.join(kinds[:5])}"
                 f"{', ...' if len(kinds) > 5 else ''}) dropped, first on line {line} of the text; check it there")
    return _BAD_CHARS.sub("", text)


_BLANK_RUN = re.compile(r"\n(?:[^\S\n]*\n){2,}")


def collapse_blank_runs(text: str) -> str:
    """Runs of more than two blank lines become two (the clean text has no blank lines at all:
    normalization drops them last). Rules anchored at a line start rescan a run of blank
    lines from each of its lines, so 60,000 of them (deeply nested HTML) took minutes."""
    return _BLANK_RUN.sub("\n\n\n", text)


def _warn(notes: list[str], meta: dict[str, Any]) -> None:
    if notes:
        meta["warnings"] = notes
        for note in notes:
            warnings.warn(InputWarning(note), stacklevel=3)
