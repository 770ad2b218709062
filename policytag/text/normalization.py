"""Normalization rules: raw extracted text -> clean text.

Every change ingestion makes to a document's text is made here, by one of the small
functions below, applied in the order of :data:`PIPELINE`. Each rule has the signature
``rule(text, removed) -> text``: it returns the new text and appends a short note to
``removed`` for everything it drops (the notes feed the ``segment`` summary). Page
furniture is described by the readable list :data:`FURNITURE_PATTERNS`.

Rules, in order:

1.  ``normalize_whitespace``     line breaks, BOM / zero-width characters, exotic spaces
2.  ``repair_mojibake``          fragments garbled by a misaligned GBK decoding (``??破展ぷ魇``)
3.  ``remove_pinyin``            pinyin in brackets after characters: ``協(xié)`` -> ``協``
4.  ``to_simplified``            Traditional -> Simplified Chinese (OpenCC ``t2s``)
5.  ``remove_injected_symbols``  mirror-site symbols (``◈★`` ...) and line-start bullets
6.  ``join_spaced_out_text``     ``全 民 科 学 素 质`` -> ``全民科学素质``
7.  ``fullwidth_punctuation``    ``,;:?!`` next to Chinese characters -> ``，；：？！``
8.  ``collapse_punctuation``     ``，、`` ``，，`` ``，。`` -> the one mark that was meant
9.  ``remove_furniture``         navigation, metadata blocks, 访问量, 【字体, (上接06版),
                                 issuing numbers, addressee lines, signatures, dates ...
10. ``reflow_pdf_lines``         (PDF only) re-join hard-wrapped lines into paragraphs
11. ``rejoin_broken_paragraphs`` a paragraph cut in two by a page or column break
12. ``tidy_lines``               strip lines, drop blank ones: one paragraph per line

The clean text has one paragraph (or heading) per line. Markdown ``#`` markers are kept
because they carry the heading structure that segmentation reads.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable

# --------------------------------------------------------------------------- character classes

#: CJK ideographs (basic + extension A + compatibility).
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: Chinese (full-width) punctuation and quotes, used as "Chinese" neighbours.
ZH_PUNCT = "\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\u2018\u2019\u201c\u201d\u2014\u2026\u00b7"
ZH = HAN + ZH_PUNCT
#: Sentence-final / clause punctuation: a line containing none of these is title-like.
SENTENCE_PUNCT = "。！？；!?;"
#: A line that ends with one of these is complete; anything else may have been cut.
LINE_END_OK = "。！？；：…”’）)】」』》!?;:"

_HAN_RE = re.compile(f"[{HAN}]")


def has_han(text: str) -> bool:
    return bool(_HAN_RE.search(text))


Rule = Callable[[str, list], str]


# --------------------------------------------------------------------------- 1. whitespace

_ZERO_WIDTH = re.compile("[\x00\ufeff\u200b\u200c\u200d\u2060\u00ad]")
_ODD_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\t\x0b\x0c]")


def normalize_whitespace(text: str, removed: list) -> str:
    """Unix line breaks; BOM, zero-width and soft-hyphen characters removed; every other kind
    of space (NBSP, en space, ideographic space, tab) becomes a plain space. Leading spaces
    are kept (signature detection reads indentation); trailing spaces are dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    text = _ZERO_WIDTH.sub("", text)
    text = _ODD_SPACES.sub(" ", text)
    return "\n".join(line.rstrip() for line in text.split("\n"))


# --------------------------------------------------------------------------- 2. mojibake

_MOJIBAKE_START = re.compile(f"(?<=[{ZH},;:])\\?+")
# what may follow the '?' in a shifted-GBK run: anything up to a delimiter
_SHIFTED_RUN = re.compile(f"[^\\s(（，。、；：,.;:!?！？“”《》]{{1,16}}")
# pinyin-ish debris left by a broken annotation: letters with tone marks, ')' and '?'
_DEBRIS = re.compile("[A-Za-z\u00c0-\u024f)）?]+")
_DEBRIS_MARK = re.compile("[\u00c0-\u024f)）?]")
_GARBAGE_HINT = re.compile("[A-Za-z\u3040-\u30ff\uac00-\ud7af]")
_ALL_HAN = re.compile(f"^[{HAN}]+$")


def _best_lead_byte(tail: bytes, next_char: str, text: str, chars: Counter) -> str | None:
    """Decode ``X + tail`` as GBK for every possible lead byte X and keep the reading whose
    first character forms a bigram with ``next_char`` that occurs elsewhere in the text."""
    best, best_score = None, 0.0
    for lead in range(0x81, 0xFF):
        try:
            decoded = (bytes([lead]) + tail).decode("gbk")
        except UnicodeDecodeError:
            continue
        if not _ALL_HAN.match(decoded):
            continue
        follow = decoded[1] if len(decoded) > 1 else next_char
        score = text.count(decoded[0] + follow) + 0.001 * chars[decoded[0]] if follow else 0.0
        if score >= 1 and score > best_score:
            best, best_score = decoded, score
    return best


def repair_mojibake(text: str, removed: list) -> str:
    """Repair text garbled by decoding GBK bytes one byte off (mirror sites produce
    ``使命,??破展ぷ魇菍W(xué)`` for ``使命,科普工作是學(xué)``).

    A run starts at ASCII ``?`` right after a Chinese character. If the following
    characters re-encoded as GBK and shifted by one lost lead byte decode to Chinese
    characters, the run is replaced by that reading (the lost lead byte is chosen so that
    the first character forms a bigram attested elsewhere in the document). If only
    pinyin debris follows (``?fàn)I``), a final ASCII trail byte is recovered the same way
    where possible and the debris is dropped. A plain ``?`` in Chinese text is left alone.
    """
    if "?" not in text:
        return text
    chars = Counter(text)
    out, pos = [], 0
    for m in _MOJIBAKE_START.finditer(text):
        if m.start() < pos:
            continue
        rest = text[m.end():]
        replacement, end = None, None
        run = _SHIFTED_RUN.match(rest)
        if run and _GARBAGE_HINT.search(run.group()):
            try:
                tail = run.group().encode("gbk")
            except UnicodeEncodeError:
                tail = None
            if tail:
                nxt = rest[run.end():run.end() + 1]
                decoded = _best_lead_byte(tail, nxt, text, chars)
                if decoded:
                    replacement, end = decoded, m.end() + run.end()
        if replacement is None:
            debris = _DEBRIS.match(rest)
            if debris and _DEBRIS_MARK.search(debris.group()):
                end = m.end() + debris.end()
                replacement = ""
                trail = debris.group()[-1]
                nxt = text[end:end + 1]
                if 0x40 <= ord(trail) <= 0x7E and nxt and has_han(nxt):
                    decoded = _best_lead_byte(trail.encode("ascii"), nxt, text, chars)
                    replacement = decoded or ""
        if end is None:
            continue
        fragment = text[m.start():end]
        removed.append(f"mojibake: {fragment!r} -> {replacement!r}" if replacement else f"mojibake: {fragment!r} dropped")
        out.append(text[pos:m.start()])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return "".join(out)


# --------------------------------------------------------------------------- 3. pinyin

_TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
PINYIN_RE = re.compile(
    f"(?<=[{HAN}])[(（]\\s*(?:[a-zü]*[{_TONED}][a-zü]*)(?:\\s+[a-zü]*[{_TONED}][a-zü]*)*\\s*[)）]"
)


def remove_pinyin(text: str, removed: list) -> str:
    """Drop pinyin annotations in brackets after a character: ``協(xié)`` -> ``協``.
    Only lower-case syllables with a tone mark count, so ``(一)`` or ``(AI)`` stay."""
    text, n = PINYIN_RE.subn("", text)
    if n:
        removed.append(f"pinyin annotations: {n}")
    return text


# --------------------------------------------------------------------------- 4. Traditional -> Simplified

_OPENCC = None


def to_simplified(text: str, removed: list) -> str:
    """Traditional -> Simplified Chinese with OpenCC (``t2s``, phrase-aware; Simplified
    text passes through unchanged)."""
    global _OPENCC
    if not has_han(text):
        return text
    if _OPENCC is None:
        import opencc

        _OPENCC = opencc.OpenCC("t2s")
    out = _OPENCC.convert(text)
    if len(out) == len(text):
        n = sum(a != b for a, b in zip(text, out))
    else:
        n = -1
    if n:
        removed.append("traditional characters converted to simplified" + (f": {n}" if n > 0 else ""))
    return out


# --------------------------------------------------------------------------- 5. injected symbols

#: Decorative symbols mirror sites inject (often before every punctuation mark).
INJECTED_SYMBOLS = "◈★☆◆◇❖✦✧✪✫✬✭✮✯✰※♦♢♠♣♥♡❤"
_INJECTED_RE = re.compile(f"[{re.escape(INJECTED_SYMBOLS)}]")
_BULLET_RE = re.compile(r"(?m)^(\s*)[•·●▪◦■□▶►▸‣⁃]\s*")


def remove_injected_symbols(text: str, removed: list) -> str:
    """Remove decorative symbols injected by mirror sites (``协◈★，`` -> ``协，``) and list
    bullets at the start of a line."""
    text, n = _INJECTED_RE.subn("", text)
    if n:
        removed.append(f"injected symbols: {n}")
    return _BULLET_RE.sub(r"\1", text)


# --------------------------------------------------------------------------- 6. spaced-out text

_SPACED_RE = re.compile(f"(?:[{ZH}] ){{2,}}[{ZH}]")


def join_spaced_out_text(text: str, removed: list) -> str:
    """Re-join text that a PDF extractor spaced out character by character
    (``全 民 科 学 素 质`` -> ``全民科学素质``). Needs at least three single characters in a
    row, so a real space between two phrases (``建设 夯实``) stays."""
    return _SPACED_RE.sub(lambda m: m.group().replace(" ", ""), text)


# --------------------------------------------------------------------------- 7. full-width punctuation

_HALF_TO_FULL = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！"}
_HALF_RE = re.compile(f"(?<=[{ZH}])\\s*[,;:?!]|[,;:?!](?=\\s*[{ZH}])")


def fullwidth_punctuation(text: str, removed: list) -> str:
    """Half-width ``, ; : ? !`` next to a Chinese character become full-width
    (``基础,是`` -> ``基础，是``). Numbers (``1,000``, ``16:53``) and URLs are untouched."""
    return _HALF_RE.sub(lambda m: _HALF_TO_FULL[m.group().strip()], text)


# --------------------------------------------------------------------------- 8. repeated punctuation

_PUNCT_RUN = re.compile("[，、；：。,;]{2,}")
_PUNCT_PRIORITY = "。；：、，"


def collapse_punctuation(text: str, removed: list) -> str:
    """A run of clause punctuation keeps only the strongest mark that was meant:
    ``，、`` -> ``、``, ``，，`` -> ``，``, ``，。`` -> ``。`` (priority 。 ； ： 、 ，)."""

    def pick(m: re.Match) -> str:
        run = m.group().replace(",", "，").replace(";", "；")
        for mark in _PUNCT_PRIORITY:
            if mark in run:
                return mark
        return run[0]

    text, n = _PUNCT_RUN.subn(pick, text)
    if n:
        removed.append(f"repeated punctuation collapsed: {n}")
    return text


# --------------------------------------------------------------------------- 9. page furniture

_DATE_CN = "[〇零一二三四五六七八九十]"
#: Page furniture: (name, pattern). A line that matches one of these in full (after
#: stripping) is removed. Checked in order; the name goes into ``Document.removed``.
FURNITURE_PATTERNS: list[tuple[str, re.Pattern]] = [
    (name, re.compile(pattern))
    for name, pattern in [
        # site navigation and greetings
        ("navigation", r"(首页|当前位置|您的位置|你的位置|您现在的位置|现在位置)\s*[:：>/»].*"),
        ("navigation", r"首页(\s*[/>»]\s*[^/>»]{1,20}){1,8}"),
        ("navigation", r"您好[!！]?\s*欢迎.{0,60}"),
        # metadata block of government sites (索引号 / 发布机构 / ...)
        ("metadata", r"(索引号|文\s*号|发文字号|发布机构|发文机关|发文单位|发布日期|成文日期|发文日期|生效日期|"
                     r"有效性|关键词|主题分类|主题词|公文种类|信息来源|来\s*源|作\s*者|责任编辑|编\s*辑|"
                     r"信息分类|体裁分类|组配分类|服务对象|所属机构|文件编号)\s*[:：].{0,80}"),
        ("metadata", r"(发布)?时间\s*[:：]\s*\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}.{0,40}"),
        ("metadata", r".{0,40}(访问量|浏览量|浏览次数|阅读量|阅读数|点击量|点击数)\s*[:：]?\s*\d*.{0,10}"),
        ("font size", r".{0,20}【\s*字体\s*[:：]?.{0,20}"),
        ("font size", r"字[体号]\s*[:：]\s*[【\[]?[大中小].{0,20}"),
        ("share", r"(扫一扫在手机打开当前页|扫一扫在手机上查看当前页面|扫一扫|用手机扫描二维码.{0,20}|"
                  r"打印本页|关闭窗口|【\s*打印\s*】.{0,20}|【\s*关闭\s*】.{0,20}|分享到\s*[:：]?.{0,40}|"
                  r"相关信息|相关链接|相关文章|相关阅读|相关附件\s*[:：]?|附件\s*[:：]?|"
                  r"上一篇\s*[:：].{0,80}|下一篇\s*[:：].{0,80}|返回顶部|【?\s*我要纠错\s*】?)"),
        ("site footer", r".{0,40}(版权所有|主办单位\s*[:：]|网站标识码|ICP备|公网安备|技术支持\s*[:：]|"
                        r"联系我们|网站地图).{0,60}"),
        # newspaper continuation marks
        ("newspaper mark", r"[(（]\s*(上接|下转|转|接)\s*第?\s*\d{1,3}\s*版\s*[)）]"),
        # attachment list lines ("附件:方案名称")
        ("attachment line", r"(相关)?附件\s*\d{0,2}\s*[:：]\s*.{1,80}"),
        # issuing numbers: 科协发普字〔2021〕61号, 昆全科办发【2023】1号
        ("issuing number", r".{0,24}[〔\[【（(]\s*(19|20)\d{2}\s*[〕\]】）)]\s*第?\s*\d{1,4}\s*号"),
        # index numbers: ksskxjsj/2023-00012, 11510000008282399T/2023-00560
        ("index number", r"[A-Za-z0-9]{4,}/\d{4}-\d{3,}"),
        # dates alone on a line
        ("date", r"(19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"),
        ("date", r"(19|20)\d{2}[-/.]\d{1,2}[-/.]\d{1,2}(\s+\d{1,2}:\d{2}(:\d{2})?)?"),
        ("date", f"{_DATE_CN}{{4}}\\s*年\\s*{_DATE_CN}{{1,2}}\\s*月\\s*{_DATE_CN}{{1,3}}\\s*日"),
        ("date", r"(19|20)\d{2}\d{0,2}\s*月\s*\d{1,2}\s*日?"),  # damaged: 202312月20
        # seals and release notes
        ("seal", r"[(（][^()（）]{0,30}(代章|盖章|印章|公章)[)）]"),
        ("release note", r"[(（]\s*此件[^()（）]{0,12}[)）]"),
        # addressee line: 各市委、市人民政府，省委各部门：
        ("addressee", r"各[^。！？]{0,200}(单位|部门|政府|科协|协会|学会|研究会|委员会|局|厅|委|办|团体|机构|"
                      r"区镇|街道|院|校|组织|公司|企业|兵团)\s*[:：]"),
        # page numbers (PDF)
        ("page number", r"[-—–]\s*\d{1,4}\s*[-—–]"),
        ("page number", r"第\s*\d{1,4}\s*页(\s*[,，/]?\s*共\s*\d{1,4}\s*页)?"),
        ("page number", r"\d{1,4}\s*/\s*\d{1,4}"),
        ("page number", r"\d{1,4}"),
    ]
]

#: Names of the furniture kinds that end a signature block (lines above them that look
#: like an organization name are the signature).
_SIGNATURE_ANCHORS = {"date", "seal"}
_SIGNATURE_MAX_LEN = 40
_SIGNATURE_INDENT = 8
_NO_SIGNATURE_PUNCT = re.compile("[。！？；，,、：:]")


def furniture_kind(line: str) -> str | None:
    """The furniture name for a line, or None if it is document text."""
    s = line.strip()
    if not s:
        return None
    for name, pattern in FURNITURE_PATTERNS:
        if pattern.fullmatch(s):
            return name
    return None


def _looks_like_signature(line: str) -> bool:
    s = line.strip()
    return bool(s) and len(s) <= _SIGNATURE_MAX_LEN and not _NO_SIGNATURE_PUNCT.search(s) and not s.startswith("#")


def remove_furniture(text: str, removed: list) -> str:
    """Remove page furniture line by line (:data:`FURNITURE_PATTERNS`), then two kinds of
    blocks that need context:

    - signatures: short organization-name lines right above a date or seal line, and
      short lines indented by many spaces (right-aligned signature blocks);
    - metadata blocks without labels that follow an index number line (category,
      publisher, date).
    """
    lines = text.split("\n")
    kinds: list[str | None] = [furniture_kind(line) for line in lines]

    # unlabeled metadata block after an index number: up to 4 short lines, ending at a date
    for i, kind in enumerate(kinds):
        if kind != "index number":
            continue
        block = []
        for j in range(i + 1, min(i + 6, len(lines))):
            if not lines[j].strip():
                continue
            if kinds[j] == "date":
                for k in block:
                    kinds[k] = "metadata"
                break
            if not _looks_like_signature(lines[j]) or len(lines[j].strip()) > 20:
                break
            block.append(j)

    # signature lines above a date / seal
    for i, kind in enumerate(kinds):
        if kind not in _SIGNATURE_ANCHORS:
            continue
        j, taken = i - 1, 0
        while j >= 0 and taken < 3:
            if not lines[j].strip() or kinds[j] in _SIGNATURE_ANCHORS:
                j -= 1
                continue
            if kinds[j] is None and _looks_like_signature(lines[j]):
                kinds[j] = "signature"
                taken += 1
                j -= 1
                continue
            break

    # right-aligned short lines (heavily indented) are signatures too
    for i, line in enumerate(lines):
        if kinds[i] is None and len(line) - len(line.lstrip(" ")) >= _SIGNATURE_INDENT and _looks_like_signature(line):
            kinds[i] = "signature"

    kept = []
    for line, kind in zip(lines, kinds):
        if kind is None:
            kept.append(line)
        else:
            s = line.strip()
            removed.append(f"{kind}: {s[:40]}{'…' if len(s) > 40 else ''}")
    return "\n".join(kept)


# --------------------------------------------------------------------------- 10. PDF reflow

_PDF_FULL_LINE = 0.85


def reflow_pdf_lines(text: str, removed: list) -> str:
    """Re-join lines that a PDF hard-wrapped at the page width: a line that fills (nearly)
    the whole width and does not end a sentence continues on the next line, unless the
    next line starts a new numbered item."""
    from policytag.text.segmentation import match_numbering  # numbering patterns live there

    lines = [line.strip() for line in text.split("\n")]
    lengths = sorted(len(line) for line in lines if len(line) >= 10)
    if not lengths:
        return text
    width = lengths[int(0.9 * (len(lengths) - 1))]
    out: list[str] = []
    joinable = False
    for line in lines:
        if not line:
            out.append(line)
            joinable = False
            continue
        if joinable and out and not match_numbering(line):
            out[-1] += line
        else:
            out.append(line)
        last = out[-1]
        joinable = (len(line) >= _PDF_FULL_LINE * width and last[-1] not in LINE_END_OK) or last[-1] in "，、,"
    return "\n".join(out)


# --------------------------------------------------------------------------- 11. broken paragraphs

_BREAK_JOIN_TAIL = re.compile("[，、,（(《“]$")


def rejoin_broken_paragraphs(text: str, removed: list) -> str:
    """Re-join a paragraph that a page or column break cut in two: a line that contains a
    full stop but does not end with closing punctuation (``…推动社区科普大学转型升级。在城乡社区综合``)
    continues on the next non-blank line, unless that line starts a numbered item or a heading."""
    from policytag.text.segmentation import match_numbering

    lines = text.split("\n")
    out: list[str] = []
    pending = False
    for line in lines:
        s = line.strip()
        if not s:
            if not pending:
                out.append(line)
            continue
        if pending and not match_numbering(s) and not s.startswith("#") and s[0] not in LINE_END_OK:
            out[-1] = out[-1].rstrip() + s
            removed.append(f"paragraph break re-joined: …{out[-1].rstrip()[-(len(s) + 6):][:12]}…")
        else:
            out.append(line)
        cur = out[-1].strip()
        pending = ("。" in cur and cur[-1] not in LINE_END_OK) or bool(_BREAK_JOIN_TAIL.search(cur))
        pending = pending and not cur.startswith("#")
    return "\n".join(out)


# --------------------------------------------------------------------------- 12. tidy

def tidy_lines(text: str, removed: list) -> str:
    """Strip every line and drop blank lines: the clean text has one paragraph per line.
    Spaces after a Markdown ``#`` marker are normalized to one."""
    out = []
    for line in text.split("\n"):
        s = line.strip()
        if not s:
            continue
        m = re.match(r"^(#{1,6})\s*(.+)$", s)
        if m:
            s = f"{m.group(1)} {m.group(2).strip()}"
        out.append(s)
    return "\n".join(out)


# --------------------------------------------------------------------------- pipeline

#: The rules in the order they are applied; ``reflow_pdf_lines`` only for PDFs.
PIPELINE: list[Rule] = [
    normalize_whitespace,
    repair_mojibake,
    remove_pinyin,
    to_simplified,
    remove_injected_symbols,
    join_spaced_out_text,
    fullwidth_punctuation,
    collapse_punctuation,
    remove_furniture,
    reflow_pdf_lines,
    rejoin_broken_paragraphs,
    tidy_lines,
]

_ONLY_FOR = {reflow_pdf_lines: {"pdf"}}


def normalize(text: str, kind: str = "text") -> tuple[str, list[str]]:
    """Apply :data:`PIPELINE` to raw text; returns ``(clean_text, removed_notes)``."""
    removed: list[str] = []
    for rule in PIPELINE:
        allowed = _ONLY_FOR.get(rule)
        if allowed is not None and kind not in allowed:
            continue
        text = rule(text, removed)
    return text, removed
