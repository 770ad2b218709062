"""Segmentation: clean text -> clauses (LABELING.md section 1).

The clean text (see :mod:`policytag.text.normalization`) has one paragraph per line. Each line
is one of:

- a **numbered line**: ``一、`` ``(一)``/``（一）`` ``1.``/``1、`` ``(1)``/``（1）`` ``①``
  ``第X章``/``第X节``/``第X条``, or a Markdown ``#`` heading (whose own numbering, if any,
  decides its level). A numbered line whose text has no sentence punctuation (``三、五项
  重点提升行动``) or a Markdown heading is a **heading**: context only. Any other numbered
  line starts a **provision** (``1.加强校内青少年科学教育。将落实…``); its first sentence
  is the inline title, a clause of its own. A heading with nothing under it is a provision.
- a **title-like line** (unnumbered, short, no sentence punctuation): before the first
  numbered line it is a document title (skipped); later an unnumbered sub-heading (context).
- a **responsibility line** (``牵头单位：…`` / ``责任单位：…`` / ``工作分工：…``): agencies of the
  preceding provision, not a clause.
- a **body paragraph**: continues the numbered provision above it, or, under a heading,
  is an un-numbered provision of its own (``p1``, ``p2`` … under that heading).

Levels follow the usual hierarchy of Chinese official documents (第X编 > 第X章 > 第X节 >
第X条 > 一、 > (一) > 1. > (1) > ①): a line pops every open level at or below its own.

Each provision is split into clauses at 。！？ and at ； where both sides are complete
statements (not inside quotes or brackets, not in a list introduced by a colon). A
trailing note ``(责任单位:…)`` / ``（责任部门：…）`` becomes the provision's ``agencies`` and
is left out of the clause text. Clause ids encode the numbering path:
``kunshan-2023/3.4.1#2`` is the second clause of item 1. under (四) under 三、; un-numbered
paragraphs get ``p<k>`` (``kunshan-2023/1.p3#1``). Every clause's ``span`` indexes the clean
text: ``doc.text[start:end] == clause.text``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policytag.clause import Clause

if TYPE_CHECKING:  # pragma: no cover
    from policytag.text.ingestion import Document

# --------------------------------------------------------------------------- numbering

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUM = "零〇一二三四五六七八九十百千两"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"


def cn_to_int(s: str) -> int:
    """Chinese numeral -> int: ``十一`` -> 11, ``二十`` -> 20, ``一百零五`` -> 105; digits pass."""
    if s.isdigit():
        return int(s)
    total, digit = 0, 0
    for ch in s:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (digit or 1) * _CN_UNITS[ch]
            digit = 0
    return total + digit


#: Numbering styles: (style, level rank, pattern). Lower rank = higher in the hierarchy.
#: The pattern matches the marker at the start of a line; group "n" is the number.
NUMBERING_STYLES: list[tuple[str, int, re.Pattern]] = [
    (style, rank, re.compile(pattern))
    for style, rank, pattern in [
        ("part", 0, rf"第(?P<n>[{_CN_NUM}\d]{{1,5}})编\s*"),
        ("chapter", 1, rf"第(?P<n>[{_CN_NUM}\d]{{1,5}})章\s*"),
        ("section", 2, rf"第(?P<n>[{_CN_NUM}\d]{{1,5}})节\s*"),
        ("article", 3, rf"第(?P<n>[{_CN_NUM}\d]{{1,5}})条\s*"),
        ("cn", 4, rf"(?P<n>[{_CN_NUM}]{{1,4}})\s*[、.．]\s*"),
        ("paren_cn", 5, rf"[(（]\s*(?P<n>[{_CN_NUM}]{{1,4}})\s*[)）]\s*[、.．]?\s*"),
        ("arabic", 6, r"(?P<n>\d{1,3})\s*(?:[、．]|\.(?!\d))\s*"),
        ("paren_arabic", 7, r"[(（]\s*(?P<n>\d{1,3})\s*[)）]\s*[、.．]?\s*"),
        ("circled", 8, rf"(?P<n>[{_CIRCLED}])\s*"),
    ]
]
_MD_HEADING = re.compile(r"^(#{1,6})\s+")
_PLAIN_RANK = 100  # an unnumbered sub-heading: below every numbered level
_MD_RANK = -10  # an unnumbered Markdown heading: rank -10 + number of '#'


@dataclass
class Numbering:
    style: str  # "cn", "paren_cn", ..., or "md" for an unnumbered Markdown heading
    rank: int
    number: int
    marker_end: int  # offset (in the line) where the text after the marker starts
    markdown: int = 0  # number of '#' (0 = not a Markdown heading)


def match_numbering(line: str) -> Numbering | None:
    """Recognize the numbering marker (or Markdown heading) at the start of a line."""
    md = 0
    start = 0
    m = _MD_HEADING.match(line)
    if m:
        md = len(m.group(1))
        start = m.end()
    rest = line[start:]
    for style, rank, pattern in NUMBERING_STYLES:
        m2 = pattern.match(rest)
        if not m2:
            continue
        if m2.end() >= len(rest.rstrip()):  # a bare marker is not an item
            continue
        n = m2.group("n")
        number = _CIRCLED.index(n) + 1 if style == "circled" else cn_to_int(n)
        return Numbering(style, rank, number, start + m2.end(), md)
    if md:
        return Numbering("md", _MD_RANK + md, 0, start, md)
    return None


# --------------------------------------------------------------------------- line kinds

_SENT_PUNCT_RE = re.compile("[。！？；!?;]")
TITLE_MAX_LEN = 60  # a line without sentence punctuation up to this length is title-like
INLINE_TITLE_MAX_LEN = 40  # first sentence of a numbered item up to this length is its title
PARA_TITLE_MAX_LEN = 20  # first sentence of an un-numbered paragraph (no commas) is a title
NO_INLINE_TITLE_STYLES = {"article"}  # 第X条: the first sentence is the article's text, not a title
_AGENCY_LINE = re.compile(r"^(牵头单位|责任单位|责任部门|牵头部门|配合单位|参与单位|工作分工|责任主体)\s*[:：]\s*(?P<names>.+)$")
_AGENCY_NOTE = re.compile(r"[(（]\s*(?:牵头单位|责任单位|责任部门|牵头部门|配合单位|参与单位|责任主体)\s*[:：]")
_AGENCY_SPLIT = re.compile(r"[、，,；;]|\s+")
_AGENCY_LABEL = re.compile(r"(?:牵头单位|责任单位|责任部门|牵头部门|配合单位|参与单位|责任主体)\s*[:：]")


def split_outside_brackets(text: str, sep: re.Pattern = _AGENCY_SPLIT) -> list[str]:
    """The non-empty, stripped pieces of ``text`` between separators (``sep``: one character
    or a run of spaces) that are not inside ( ) / （ ）."""
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text + "、":
        if ch in "(（":
            depth += 1
        elif ch in ")）":
            depth = max(0, depth - 1)
        if depth == 0 and sep.fullmatch(ch):
            piece = "".join(cur).strip()
            if piece:
                out.append(piece)
            cur = []
        else:
            cur.append(ch)
    return out


def split_agencies(names: str) -> list[str]:
    """``市教育局、市科协等，各区镇`` -> ``["市教育局", "市科协", "各区镇"]``. Separators are
    、，,；; (not inside brackets); a trailing 等 is dropped."""
    out: list[str] = []
    for name in split_outside_brackets(_AGENCY_LABEL.sub("、", names)):
        if name.endswith("等") and len(name) > 1:
            name = name[:-1]
        if name and name not in out:
            out.append(name)
    return out


def _find_agency_notes(text: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, names) of every bracketed responsibility note in a line."""
    notes: list[tuple[int, int, list[str]]] = []
    for m in _AGENCY_NOTE.finditer(text):
        depth, end = 0, None
        for i in range(m.start(), len(text)):
            ch = text[i]
            if ch in "(（":
                depth += 1
            elif ch in ")）":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
        if end is None:
            continue
        if notes and m.start() < notes[-1][1]:
            continue
        notes.append((m.start(), end, split_agencies(text[m.end():end - 1])))
    return notes


# --------------------------------------------------------------------------- sentences

_SENT_END = "。！？!?"
_CLOSERS = "”’」』)）】》"
_MIN_SEMICOLON_SIDE = 8
_PAIRS = [("“", "”"), ("「", "」"), ("『", "』"), ("(", ")"), ("（", "）"), ("《", "》"), ("【", "】")]
_PROTECT_MAX = 300


def _protected(text: str) -> list[bool]:
    """Positions inside a balanced quote or bracket pair (closed within the paragraph)."""
    inside = [False] * len(text)
    for op, cl in _PAIRS:
        i = text.find(op)
        while i != -1:
            j = text.find(cl, i + 1, i + 1 + _PROTECT_MAX)
            nested = text.find(op, i + 1, j) if j != -1 and op != cl else -1
            if j != -1 and nested == -1:
                for k in range(i + 1, j):
                    inside[k] = True
                i = text.find(op, j + 1)
            else:
                i = text.find(op, i + 1)
    return inside


_SHI_NUMS = "一二三四五六七八九十"


def enumerated_shi_cuts(seg: str) -> set[int]:
    """Rule ``split_enumerated_shi``: items enumerated as 一是…二是…三是… inside one paragraph
    are separate provisions even where the source has no 。 before 二是 (``…学术带头人二是重视…``,
    ``…，三是加强…``). Returns the offsets of 二是, 三是, … that follow 一是 in sequence (each
    number once, in order; ``第二是`` and a 是 inside quotes do not count)."""
    cuts: set[int] = set()
    inside = _protected(seg)
    pos = -1
    for k, num in enumerate(_SHI_NUMS):
        q = seg.find(num + "是", pos + 1)
        while q != -1 and (inside[q] or (q > 0 and seg[q - 1] in "第统唯")):
            q = seg.find(num + "是", q + 1)
        if q == -1:
            break
        if k > 0 and q > 0 and seg[q - 1] not in _SENT_END + _CLOSERS:
            cuts.add(q)
        pos = q
    return cuts


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]``: split after 。！？ (with any closing quotes or
    brackets), after ； when both sides have at least 8 characters and the sentence
    is not a list introduced by a colon, and before 二是/三是/… of an 一是 enumeration
    (:func:`enumerated_shi_cuts`). Marks inside quotes or brackets do not split."""
    end = len(text) if end is None else end
    seg = text[start:end]
    inside = _protected(seg)
    shi_cuts = enumerated_shi_cuts(seg) if "一是" in seg else set()
    spans, s, colon = [], 0, False
    i, n = 0, len(seg)
    while i < n:
        ch = seg[i]
        if i in shi_cuts and i > s:
            spans.append((s, i))
            s, colon = i, False
        if inside[i]:
            i += 1
            continue
        if ch in "：:":
            colon = True
        cut = None
        if ch in _SENT_END:
            cut = i + 1
        elif ch in "；;" and not colon:
            left = len(seg[s:i].strip())
            nxt = re.search("[。！？!?；;]", seg[i + 1:])
            right = len(seg[i + 1:i + 1 + nxt.start()] if nxt else seg[i + 1:])
            if left >= _MIN_SEMICOLON_SIDE and right >= _MIN_SEMICOLON_SIDE:
                cut = i + 1
        if cut is not None:
            while cut < n and seg[cut] in _CLOSERS + _SENT_END:
                cut += 1
            spans.append((s, cut))
            s, colon = cut, False
            i = cut
            continue
        i += 1
    if s < n:
        spans.append((s, n))
    out = []
    for a, b in spans:
        piece = seg[a:b]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        a, b = a + lead, b - trail
        if b > a and re.search(r"[\w]", seg[a:b]):
            out.append((start + a, start + b))
    return out


# --------------------------------------------------------------------------- tree building

@dataclass
class _Node:
    rank: int
    seg: str | None  # path segment ("3", "p2", None for an unnumbered sub-heading)
    text: str  # context text
    kind: str  # "heading" | "provision" | "plain"
    line: tuple[int, int] = (0, 0)
    has_children: bool = False
    pcount: int = 0  # un-numbered paragraphs seen directly under this node
    hcount: int = 0  # unnumbered Markdown headings directly under this node
    provision: "_Provision | None" = None


@dataclass
class _Provision:
    segs: list[str]
    ancestors: list[_Node]
    numbered: bool
    pieces: list[tuple[int, int]] = field(default_factory=list)  # line spans in the clean text
    body_starts: list[int] = field(default_factory=list)  # where text starts in each piece (after '#')
    agencies: list[str] = field(default_factory=list)
    title: str = ""
    first_sentence: str = ""
    style: str = ""  # numbering style of the provision's own line


def _iter_lines(text: str):
    pos = 0
    for raw in text.split("\n"):
        s = raw.strip()
        if s:
            a = pos + (len(raw) - len(raw.lstrip()))
            yield a, a + len(s), s
        pos += len(raw) + 1


def _strip_punct(s: str) -> str:
    return s.rstrip("。！？；!?;：:，, ")


def _heading_text(line: str) -> str:
    return _strip_punct(_MD_HEADING.sub("", line).strip())


FRAGMENT_MAX_LEN = 2  # a title-like line this short (or without any letter) is a fragment


def _is_fragment_line(line: str) -> bool:
    """Rule ``skip_fragment_lines``: a left-over of a cut sentence (``以``) or a page marker
    (``12``, ``- -``) alone on a line is no heading: it would become a level of every heading
    path below it. Such a line is skipped."""
    core = _MD_HEADING.sub("", line).strip()
    return len(core) <= FRAGMENT_MAX_LEN or not re.search(r"[^\W\d_]", core)


def _is_title_like(line: str) -> bool:
    return len(line) <= TITLE_MAX_LEN and not _SENT_PUNCT_RE.search(line)


def _close_node(node: _Node, stack: list[_Node], root: _Node, text: str, provisions: list[_Provision]) -> None:
    """Leaving ``node``: a heading with nothing under it is a provision of its own."""
    if node.kind in ("heading", "plain") and not node.has_children:
        idx = stack.index(node) if node in stack else len(stack)
        segs = [n.seg for n in stack[:idx] if n.seg is not None]
        if node.seg is not None:
            segs.append(node.seg)
        else:
            parent = next((n for n in reversed(stack[:idx]) if n.seg is not None), root)
            parent.pcount += 1
            segs.append(f"p{parent.pcount}")
        md = _MD_HEADING.match(text[node.line[0]:node.line[1]])
        body = node.line[0] + (md.end() if md else 0)
        prov = _Provision(segs, list(stack[:idx]), numbered=node.seg is not None and not node.seg.startswith("p"))
        prov.pieces.append(node.line)
        prov.body_starts.append(body)
        provisions.append(prov)


def _numbered_node(num: Numbering, line: str, a: int, b: int, parent: _Node, path: list[str], ancestors: list[_Node],
                   provisions: list[_Provision]) -> _Node:
    """The node of a numbered line: a heading, or a provision (added to ``provisions``) when
    the line has its own body text."""
    if num.style == "md":
        parent.hcount += 1
        seg = f"h{parent.hcount}"
    else:
        seg = str(num.number)
    body = line[num.marker_end:]
    heading_like = bool(num.markdown) or (_is_title_like(body) and not body.endswith(("：", ":")))
    node = _Node(num.rank, seg, _heading_text(line), "heading" if heading_like else "provision", (a, b))
    if not heading_like:
        prov = _Provision(path + [seg], ancestors, numbered=True, style=num.style)
        prov.pieces.append((a, b))
        prov.body_starts.append(a + (num.marker_end if num.markdown else 0))
        provisions.append(prov)
        node.provision = prov
    return node


def _build(text: str, titles_as_paragraphs: bool = False) -> list[_Provision]:
    stack: list[_Node] = []
    root = _Node(rank=-100, seg=None, text="", kind="root")
    provisions: list[_Provision] = []
    seen_structure = False

    def path_segs() -> list[str]:
        return [n.seg for n in stack if n.seg is not None]

    def mark_children():
        for n in stack:
            n.has_children = True
        root.has_children = True

    def pop_to(rank: int):
        while stack and stack[-1].rank >= rank:
            node = stack[-1]
            _close_node(node, stack, root, text, provisions)
            stack.pop()

    for a, b, line in _iter_lines(text):
        m = _AGENCY_LINE.match(line)
        if m and provisions:
            for name in split_agencies(m.group("names")):
                if name not in provisions[-1].agencies:
                    provisions[-1].agencies.append(name)
            continue

        num = match_numbering(line)
        if num and num.style == "md" and num.markdown == 1 and not seen_structure and not provisions \
                and not titles_as_paragraphs:
            continue  # an unnumbered top heading before anything else is the document title
        if num:
            seen_structure = True
            pop_to(num.rank)
            mark_children()
            stack.append(_numbered_node(num, line, a, b, stack[-1] if stack else root, path_segs(), list(stack),
                                        provisions))
            continue

        if _is_title_like(line) and not titles_as_paragraphs:
            if _is_fragment_line(line):
                continue  # rule skip_fragment_lines: a stray "以" / "12" line is neither heading nor clause
            if not seen_structure:
                continue  # document title / metadata line before the body: not a clause
            pop_to(_PLAIN_RANK)
            mark_children()
            stack.append(_Node(_PLAIN_RANK, None, _strip_punct(line), "plain", (a, b)))
            continue

        # body paragraph
        top = stack[-1] if stack else None
        if top is not None and top.kind == "provision":
            assert top.provision is not None  # a provision node carries its provision
            top.provision.pieces.append((a, b))
            top.provision.body_starts.append(a)
            continue
        mark_children()
        holder = next((n for n in reversed(stack) if n.seg is not None), root)
        holder.pcount += 1
        prov = _Provision(path_segs() + [f"p{holder.pcount}"], list(stack), numbered=False)
        prov.pieces.append((a, b))
        prov.body_starts.append(a)
        provisions.append(prov)

    pop_to(-1000)
    provisions.sort(key=lambda p: p.pieces[0][0])
    return provisions


# --------------------------------------------------------------------------- clauses

def _context_text(node: _Node) -> str:
    if node.kind == "provision" and node.provision is not None:
        return node.provision.title or _strip_punct(node.provision.first_sentence)[:INLINE_TITLE_MAX_LEN]
    return node.text


_TITLE_WORDS = re.compile("方案|意见|通知|办法|条例|规划|纲要|措施|计划|细则|标准|规定|决定|要点|规范|指南|公告|通告|函|报告|总结")


def guess_title(text: str, max_lines: int = 6) -> str:
    """The document's own title line, for documents without metadata: the first title-like
    line among the first few that names a document kind (方案, 意见, 通知, 办法, 条例, …).
    Empty when there is none. The model reads it as document context."""
    for line in [ln.strip() for ln in text.splitlines() if ln.strip()][:max_lines]:
        if match_numbering(line):
            break
        if 4 <= len(line) <= TITLE_MAX_LEN and _is_title_like(line) and _TITLE_WORDS.search(line):
            return line
    return ""


def segment(doc: "Document | tuple[str, str]", *, titles_as_paragraphs: bool = False) -> list[Clause]:
    """Split a document's clean text into clauses (LABELING.md section 1).

    ``doc`` is a :class:`policytag.ingestion.Document` or a ``(doc_id, clean_text)`` pair.
    Spans index ``doc.text``. A text without any structure and only title-like lines
    (a pasted phrase) is read as paragraphs, so it is never silently dropped.
    """
    if isinstance(doc, tuple):
        doc_id, text = doc
        meta: dict = {}
    else:
        doc_id, text = doc.doc_id, doc.text
        meta = doc.meta or {}
    parts = meta.get("parts")
    if parts and len(parts) > 1:
        # a document assembled from several pages (ingestion.load_source): one heading tree
        # per part, provision ids prefixed ``pt<k>.`` so they stay unique
        clauses = []
        for k, (a, b) in enumerate(parts, 1):
            clauses.extend(_segment_text(doc_id, text, a, b, f"pt{k}.", titles_as_paragraphs))
    else:
        clauses = _segment_text(doc_id, text, 0, len(text), "", titles_as_paragraphs)
    src = meta.get("source_meta") or {}
    if not src.get("doc_title"):
        title = guess_title(text)
        if title:
            src = {**src, "doc_title": title}
    if src:
        for c in clauses:
            c.doc_title = src.get("doc_title") or ""
            c.genre = src.get("genre") or ""
            c.level = src.get("level") or ""
            c.year = src.get("year")
    return clauses


def _segment_text(doc_id: str, full_text: str, start: int, end: int, prefix: str,
                  titles_as_paragraphs: bool) -> list[Clause]:
    """Clauses of ``full_text[start:end]`` (spans index ``full_text``)."""
    text = full_text[start:end]
    provisions = _build(text, titles_as_paragraphs=titles_as_paragraphs)

    # sentences, agencies and inline titles per provision
    per_prov: list[list[tuple[int, int]]] = []
    for prov in provisions:
        spans: list[tuple[int, int]] = []
        for (a, b), body in zip(prov.pieces, prov.body_starts):
            line = text[a:b]
            cursor = body
            for na, nb, names in _find_agency_notes(line):
                for name in names:
                    if name not in prov.agencies:
                        prov.agencies.append(name)
                spans.extend(split_sentences(text, cursor, a + na))
                cursor = a + nb
            spans.extend(split_sentences(text, cursor, b))
        per_prov.append(spans)
        if spans:
            first = text[spans[0][0]:spans[0][1]]
            prov.first_sentence = first
            limit = INLINE_TITLE_MAX_LEN if prov.numbered else PARA_TITLE_MAX_LEN
            numbering = match_numbering(first)
            core = first[numbering.marker_end:] if numbering else first
            if (
                prov.style not in NO_INLINE_TITLE_STYLES
                and len(spans) > 1
                and first.endswith("。")
                and len(core) <= limit
                and "：" not in core
                and (prov.numbered or not re.search("[，、；：]", core))
            ):
                prov.title = _strip_punct(first)

    clauses: list[Clause] = []
    used: dict[str, int] = {}
    for prov, spans in zip(provisions, per_prov):
        if not spans:
            continue
        pid = prefix + (".".join(prov.segs) or "p1")
        if pid in used:  # a numbering error in the source (two items "3." under one heading)
            used[pid] += 1
            pid = f"{pid}_{used[pid]}"
        else:
            used[pid] = 1
        heads = [t for t in (_context_text(n) for n in prov.ancestors) if t]
        for k, (s, e) in enumerate(spans, 1):
            parts = list(heads)
            if prov.title and k > 1:
                parts.append(prov.title)
            clauses.append(
                Clause(
                    doc_id=doc_id,
                    clause_id=f"{doc_id}/{pid}#{k}",
                    text=text[s:e],
                    context=" > ".join(parts),
                    provision_id=f"{doc_id}/{pid}",
                    span=(start + s, start + e),
                    agencies=list(prov.agencies),
                )
            )
    if not clauses and not titles_as_paragraphs and text.strip():
        return _segment_text(doc_id, full_text, start, end, prefix, True)
    return clauses


def segment_file(path: str | os.PathLike) -> tuple["Document", list[Clause]]:
    """Load a file (any supported type) and segment it."""
    from policytag.text.ingestion import load_document

    doc = load_document(path)
    return doc, segment(doc)


def summarize(doc: "Document", clauses: list[Clause]) -> dict[str, Any]:
    """Counts for the per-document summary of ``policytag segment``."""
    return {
        "doc_id": doc.doc_id,
        "source": str(doc.source),
        "kind": doc.kind,
        "provisions": len({c.provision_id for c in clauses}),
        "clauses": len(clauses),
        "characters": len(doc.text),
        "removed": len(doc.removed),
        "removed_items": list(doc.removed),
    }
