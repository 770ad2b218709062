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

Added for web copies of documents (labels/sources/corpus), in pipeline order:
``remove_html_fragments`` (after 1: ``<strike id=..>``, ``</div>``, ``&nbsp;``),
``strip_trailing_replacement_chars`` (U+FFFD at a cut line end), ``join_cjk_spaces``
(after 6: ``企 业`` -> ``企业``), new :data:`FURNITURE_PATTERNS` families (seo spam, keyword
spam, site name, byline, contact, image, packed metadata, table of contents) and, after 9,
``split_run_in_articles`` (``第一章 总则第一条 …。第二条 …``), ``split_embedded_numbering``
(an outline on one long line), ``join_bare_markers`` (``第一条`` alone on a line) and
``remove_toc_lines`` (runs of chapter headings).

The clean text has one paragraph (or heading) per line. Markdown ``#`` markers are kept
because they carry the heading structure that segmentation reads.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable

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


# --------------------------------------------------------------------------- 1b. HTML fragments

_HTML_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9]{0,10}(?:\s+[A-Za-z_:-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))*\s*/?>")
_HTML_ENTITIES = {"&nbsp;": " ", "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#39;": "'",
                  "&ldquo;": "“", "&rdquo;": "”", "&mdash;": "—", "&hellip;": "…", "&middot;": "·",
                  "&emsp;": " ", "&ensp;": " ", "&thinsp;": " "}
_HTML_ENTITY_RE = re.compile("|".join(re.escape(k) for k in _HTML_ENTITIES) + r"|&#(\d{2,5});")


def remove_html_fragments(text: str, removed: list) -> str:
    """Drop HTML tag fragments left in .txt copies of web pages (``<strike id="x">``,
    ``</div>``, ``<br/>``) and decode the common entities (``&nbsp;`` -> space). Only tags
    whose name is ASCII count, so Chinese book titles in angle brackets
    (``<全民科学素质行动规划纲要>``) stay."""
    text, n = _HTML_TAG_RE.subn("", text)

    def entity(m: re.Match) -> str:
        if m.group(1):
            try:
                return chr(int(m.group(1)))
            except (ValueError, OverflowError):
                return m.group()
        return _HTML_ENTITIES[m.group()]

    text, k = _HTML_ENTITY_RE.subn(entity, text)
    if n or k:
        removed.append(f"HTML fragments: {n} tags, {k} entities")
    return text


# --------------------------------------------------------------------------- 1c. replacement characters

_TRAILING_FFFD = re.compile("\ufffd+[ \t]*$", re.M)


def strip_trailing_replacement_chars(text: str, removed: list) -> str:
    """Pages cut mid-character end in U+FFFD (``科学�``): drop U+FFFD at the end of a line
    (the truncated sentence itself is kept)."""
    text, n = _TRAILING_FFFD.subn("", text)
    if n:
        removed.append(f"trailing replacement characters: {n}")
    return text


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
        out.append(replacement or "")
        pos = end
    out.append(text[pos:])
    return "".join(out)


# --------------------------------------------------------------------------- 2b. question-mark runs and toneless pinyin

_QMARK_RUN = re.compile("(?<=\\S)[?？]{2,}(?=[ \\t]*$)", re.M)


def remove_question_mark_runs(text: str, removed: list) -> str:
    """Runs of two or more ``?``/``？`` at the end of a line are spaces or symbols lost in a
    bad re-encoding (``第一条？？``, ``一、活动时间？???``): dropped."""
    text, n = _QMARK_RUN.subn("", text)
    if n:
        removed.append(f"question-mark runs: {n}")
    return text


_TONELESS_PINYIN = re.compile(f"(?<=[{HAN})])[(（][a-z]{{1,6}}[)）]")
_TONELESS_MIN = 5


def remove_toneless_pinyin(text: str, removed: list) -> str:
    """Mirror sites that annotate characters with toneless pinyin (``交(jiao)(jiao)通(tong)``):
    when a document has at least 5 such ``(syllable)`` annotations, all are dropped. A few
    lower-case words in brackets in normal text (``(app)``) stay."""
    if len(_TONELESS_PINYIN.findall(text)) < _TONELESS_MIN:
        return text
    text, n = _TONELESS_PINYIN.subn("", text)
    removed.append(f"toneless pinyin annotations: {n}")
    return text


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


_CJK_SPACE_RE = re.compile(f"(?<=[{HAN}]) {{1,3}}(?=[{HAN}])")
_MARKER_BEFORE = re.compile("第[一二三四五六七八九十百零〇两\\d]{1,5}[编章节条]$")


def join_cjk_spaces(text: str, removed: list) -> str:
    """Remove a single space between two Chinese characters, left by PDF copies inside
    words (``企 业事业单位`` -> ``企业事业单位``, ``讲解视 频`` -> ``讲解视频``), where
    :func:`join_spaced_out_text` (three or more spaced characters) does not apply.
    Markdown markers and spaces next to digits, Latin text or punctuation are untouched, and so
    are a space after a marker (``第一条 为``) and spaces inside a 《title》."""
    count = [0]

    def join(m: re.Match) -> str:
        line_start = text.rfind("\n", 0, m.start()) + 1
        if _MARKER_BEFORE.search(text[max(line_start, m.start() - 8):m.start()]):
            return m.group()  # 第一条 为… / 第一章 总则: the space after a marker stays
        before = text[line_start:m.start()]
        if before.count("《") > before.count("》"):
            return m.group()  # inside a title 《…建设 夯实…》 the space is the title's own
        count[0] += 1
        return ""

    text = _CJK_SPACE_RE.sub(join, text)
    n = count[0]
    if n:
        removed.append(f"spaces inside Chinese words: {n}")
    return text


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


# --------------------------------------------------------------------------- 5b. inline watermarks

#: Watermarks that download sites inject inside sentences: a labelled URL
#: (``…素材库:(https://www.x.cn/。``), a WeChat account ad (``公众号:某某。``, also with an
#: inserted ``…``) and the phrase ``整理汇总。``. Removed wherever they occur.
INLINE_WATERMARK_PATTERNS: list[re.Pattern] = [
    re.compile(f"(?:[{HAN}][—=]*){{2,6}}库\\s*[:：]\\s*[(（]?\\s*https?://[A-Za-z0-9./_%?=&-]+[)）]?。?"),
    re.compile("[|｜]?\\s*公\\s*众\\s*…?\\s*号\\s*[:：][^。\\n]{1,14}。"),
    re.compile("[|｜]?\\s*整理汇总。"),
]
#: a short tail after a sentence end that repeats at the end of several lines: a site stamp
_REPEATED_TAIL = re.compile(f"(?<=[。！？])([A-Za-z0-9{HAN}]{{3,16}})[ \\t]*$", re.M)


def remove_inline_watermarks(text: str, removed: list) -> str:
    """Drop watermarks that download sites inject inside or after sentences: the patterns of
    :data:`INLINE_WATERMARK_PATTERNS`, and a short stamp after the last sentence end of a line
    (``…长效机制。OTP四川教育在线``) when the same stamp ends at least two lines."""
    n = 0
    for pattern in INLINE_WATERMARK_PATTERNS:
        text, k = pattern.subn("", text)
        n += k
    tails = Counter(m.group(1) for m in _REPEATED_TAIL.finditer(text))
    stamps = {t for t, c in tails.items() if c >= 2}
    if stamps:
        text, k = _REPEATED_TAIL.subn(lambda m: "" if m.group(1) in stamps else m.group(0), text)
        n += k
        removed.extend(f"inline watermark: {t}" for t in sorted(stamps))
    if n:
        removed.append(f"inline watermarks removed: {n}")
    return text


# --------------------------------------------------------------------------- 9a. download-site page chunks

_CHUNK_MARK = re.compile(r"^(\d{1,3})、")
_CHUNK_MIN_LEN = 200


def join_docsite_page_chunks(text: str, removed: list) -> str:
    """Document-sharing sites dump a document as page chunks ``1、…`` ``2、…`` ``3、…`` that
    cut sentences mid-word (``…倡导科学方`` / ``2、法，传播科学思想``). A run of lines numbered
    1、2、3、… in order, every one but the last at least 200 characters long, where at least one
    line ends mid-sentence, is such a dump: the markers are dropped and the chunks joined into
    one line (later rules split it at articles and outline markers). Real items ``1、`` end
    their sentences, so they are left alone."""
    lines = text.split("\n")
    idx = [i for i, line in enumerate(lines) if line.strip()]
    out_drop: set[int] = set()
    k = 0
    while k < len(idx):
        m = _CHUNK_MARK.match(lines[idx[k]].strip())
        if not m or m.group(1) != "1":
            k += 1
            continue
        run = [idx[k]]
        j = k + 1
        while j < len(idx):
            m2 = _CHUNK_MARK.match(lines[idx[j]].strip())
            if not m2 or int(m2.group(1)) != len(run) + 1:
                break
            run.append(idx[j])
            j += 1
        body = [lines[i].strip() for i in run]
        mid_cut = any(b[-1] not in LINE_END_OK for b in body[:-1])
        if len(run) >= 2 and mid_cut and all(len(b) >= _CHUNK_MIN_LEN for b in body[:-1]):
            joined = "".join(_CHUNK_MARK.sub("", b, count=1) for b in body)
            lines[run[0]] = joined
            out_drop.update(run[1:])
            removed.append(f"download-site page chunks joined: {len(run)}")
        k = j
    return "\n".join(line for i, line in enumerate(lines) if i not in out_drop)


# --------------------------------------------------------------------------- 9b'. box-drawing tables

_BOX_CHARS = re.compile("[\u2500-\u257f]")


def remove_box_drawing_rows(text: str, removed: list) -> str:
    """Tables drawn with box-drawing characters (``┌──┬──┐``, ``│工作内容 │牵头单位 │``) are
    flattened into rows whose cells run into each other and wrap across lines: not clauses.
    Every line that contains a box-drawing character is dropped."""
    out, n = [], 0
    for line in text.split("\n"):
        if _BOX_CHARS.search(line):
            n += 1
            continue
        out.append(line)
    if n:
        removed.append(f"box-drawing table rows: {n}")
    return "\n".join(out)


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
        # SEO / mirror-site boilerplate around copied documents
        ("seo spam", r"网上有关[“\"].{1,80}[”\"]话题很是火热.{0,200}"),
        ("seo spam", r"(导语|简介|前言|摘要)\s*[:：].{0,120}(网友上传|本站|小编|文库|范文).{0,120}"),
        ("seo spam", r".{0,80}(由会员上传分享|由会员分享|可在线阅读，更多相关|免费在线阅读).{0,120}"),
        ("seo spam", r"亲[，,]\s*该文档总共.{0,60}"),
        ("seo spam", r"(文本内容|正文内容|全文内容)\s*[:：]"),
        ("seo spam", r"欢迎(来到|光临|访问).{0,40}[!！。]?"),
        ("seo spam", r"设为书签.{0,60}|.{0,30}本文被阅读过\s*\d+\s*次.{0,80}|关注微信公众号.{0,30}"),
        # keyword spam: lines of _ , | separated adult/gambling keyword lists
        ("keyword spam", r".{0,400}(亚洲|国产|无码|人妻|精品|在线观看|久久|福利|成人|日韩|欧美)"
                         r".{0,40}[_|,，].{0,40}(亚洲|国产|无码|人妻|精品|在线观看|久久|福利|成人|日韩|欧美).{0,2000}"),
        ("keyword spam", r"(北京|天津|河北|山西|内蒙古|辽宁|吉林|黑龙江|上海|江苏|浙江|安徽|福建|江西|山东|河南|湖北|"
                         r"湖南|广东|广西|海南|重庆|四川|贵州|云南|西藏|陕西|甘肃|青海|宁夏|新疆|香港|澳门|台湾|\s){12,}"),
        # site names of law / document mirror sites
        ("site name", r".{0,20}(法搜网|中国法律信息搜索网|法律资料网|天天文库|写写帮文库|免费范文网|文档网)"
                      r"(\s*[-—|]+\s*.{0,30})?"),
        ("site footer", r"(?i).{0,40}(copyright|all rights reserved|©).{0,80}"),
        # reporter / editor lines of news reports
        ("byline", r"[(（]?\s*(记者|通讯员|特约记者|见习记者)\s*[\u4e00-\u9fff]{2,4}(\s*[(（][^()（）]{1,10}[)）])?\s*[)）]?\s*[|｜]?"),
        ("byline", r"[(（]\s*[^()（）]{0,10}(记者|通讯员|编辑|责编|摄影|来源)\s*[:：]?\s*[^()（）]{1,16}[)）]"),
        ("byline", r"[(（]\s*完\s*[)）]"),
        ("byline", r"(责任编辑|责编|编辑|审核|校对|摄影|作者|来源)\s*[:：].{0,60}"),
        # contact lines of notices
        ("contact", r"(联\s*系\s*人|联系电话|联系方式|咨询电话|电子邮箱|邮\s*箱|传\s*真|邮\s*编)\s*[:：].{0,80}"),
        # image placeholders of web copies
        ("image", r"[\w-]{1,40}\.(jpg|jpeg|png|gif|bmp|webp)|图片|image|\[图片\]"),
        # metadata line that packs several fields (名称：… 发布日期：…)
        ("metadata", r".{0,100}(发布日期|发布时间|发布机关|发文机关|体裁分类|主题分类|信息名称|名\s*称)\s*[:：].{0,120}"
                     r"(日期|时间|机关|机构|分类|来源|浏览|文号|作者)\s*[:：].{0,200}"),
        ("metadata", r"(信息名称|内容概述|名\s+称)\s*[:：].{0,300}"),
        # bracketed metadata of law databases: 【发布部门】… 【效力级别】…
        ("metadata", r"(【\s*(发布部门|发布文号|效力级别|时效状态|发布日期|实施日期|法律话题|产业领域|"
                     r"颁布日期|失效日期|法规类别|文号)\s*】.{0,80}){1,6}"),
        ("table of contents", r"目\s*录"),
        # dotted table-of-contents lines
        ("table of contents", r".{1,60}?[.…·．]{4,}\s*\d{0,4}"),
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
        # adoption / promulgation note of a law on its own line: (2006年3月30日…通过…施行)
        ("adoption note", r"[(（]\s*(19|20)\d{2}\s*年[^()（）]{0,150}(通过|公布|施行|发布)[^()（）]{0,60}[)）]"),
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
        block: list[Any] = []
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


# --------------------------------------------------------------------------- 9b. run-in articles and outlines

_N = "[一二三四五六七八九十百零〇两\\d]{1,5}"
_CN_SMALL = "[一二三四五六七八九十]{1,3}"
#: 第X章 <short title> 第X条 ...: a chapter heading run into its first article
_CHAPTER_RUN_IN = re.compile(f"(第{_N}[章节]\\s*[^。；;，,、：:第\\s]{{1,20}})\\s*(?=第{_N}条\\s*\\S)")
#: a sentence end (with closing quotes/brackets) followed by 第X条/第X章 and text
_ARTICLE_AFTER_END = re.compile(f"(?<=[。；;！？!?])([”’」』)）]*)\\s*(?=第{_N}[条章节]\\s*[^\\s，。、的中规所]{{1}})")


def split_run_in_articles(text: str, removed: list) -> str:
    """Put run-in articles of laws and rules on lines of their own: ``第一章 总则第一条 为…。
    第二条 本市…`` -> ``第一章 总则`` / ``第一条 为…。`` / ``第二条 本市…``. A new line starts
    before ``第X条``/``第X章`` only where it follows a sentence end (。；！？) or a chapter
    heading and is followed by text, so a reference inside a sentence (``依照本条例第十条规定``,
    ``本办法第三条``) never splits."""
    n = 0
    out = []
    for line in text.split("\n"):
        new, k1 = _CHAPTER_RUN_IN.subn(lambda m: m.group(1) + "\n", line)
        new, k2 = _ARTICLE_AFTER_END.subn(lambda m: m.group(1) + "\n", new)
        n += k1 + k2
        out.append(new)
    if n:
        removed.append(f"run-in articles split: {n}")
    return "\n".join(out)


#: a document title (ending in a document kind, optionally with a bracketed note such as
#: ``(暂行)`` or the adoption line of a law) run into the first heading or article
_TITLE_RUN_IN = re.compile(
    "^(?P<title>[^。；;，,：:！？\\n]{4,60}?(?:方案|条例|办法|意见|通知|规划|纲要|计划|细则|规定|要点|决定))"
    "(?P<note>[(（][^()（）\\n]{1,120}[)）])?"
    f"(?=第[一1][章条节]|一、|[(（]一[)）])")


def split_title_run_in(text: str, removed: list) -> str:
    """Put a document title that runs into the first heading on a line of its own:
    ``某某科普条例(暂行)第一章总则`` -> ``某某科普条例`` / ``(暂行)`` / ``第一章总则`` (an adoption
    note ``(2006年3月30日…通过…施行)`` is dropped as furniture); ``某某大赛实施方案一、大赛主题…`` -> ``某某大赛实施方案`` / ``一、大赛主题…``.
    Only at the start of a line, and only before the first marker (第一章/第一条/一、/(一))."""
    n = 0
    out = []
    for line in text.split("\n"):
        m = _TITLE_RUN_IN.match(line.strip())
        if m:
            s = line.strip()
            note = m.group("note")
            if note and furniture_kind(note):  # an adoption note is furniture: dropped
                removed.append(f"{furniture_kind(note)}: {note[:40]}")
                note = None
            parts = [m.group("title")] + ([note] if note else []) + [s[m.end():]]
            line = "\n".join(parts)
            n += 1
        out.append(line)
    if n:
        removed.append(f"title run-in split: {n}")
    return "\n".join(out)


#: a sentence end followed by an outline marker (二、 (三) 4. (5)) and text
_EMBEDDED_MARKER = re.compile(
    f"(?<=[。！？!?；;])([”’」』)）]*)\\s*(?=(?:{_CN_SMALL}、|[(（]{_CN_SMALL}[)）]|[(（]\\d{{1,2}}[)）]|"
    f"\\d{{1,2}}(?:、|[.．](?!\\d)))\\s*[\u3400-\u9fff“《])")
_EMBEDDED_MIN_LINE = 150


def split_embedded_numbering(text: str, removed: list) -> str:
    """Split an outline pasted as one long line (``…全民科学素质。二、工作内容（一）…。（二）…``)
    at numbering markers that follow a sentence end, so each item becomes a provision. Only
    lines of at least 150 characters are split (a short line with ``。1.`` is left alone)."""
    n = 0
    out = []
    for line in text.split("\n"):
        if len(line) >= _EMBEDDED_MIN_LINE:
            line, k = _EMBEDDED_MARKER.subn(lambda m: m.group(1) + "\n", line)
            n += k
        out.append(line)
    if n:
        removed.append(f"embedded numbering split: {n}")
    return "\n".join(out)


_BARE_MARKER = re.compile(f"(第{_N}[编章节条]|{_CN_SMALL}[、.．]|[(（]\\s*(?:{_CN_SMALL}|\\d{{1,2}})\\s*[)）]|\\d{{1,2}}[、.．])")
_NEXT_IS_MARKER = re.compile(f"(第{_N}[编章节条]|{_CN_SMALL}、|[(（]\\s*(?:{_CN_SMALL}|\\d{{1,2}})\\s*[)）]|\\d{{1,2}}[、.．]|#)")


def join_bare_markers(text: str, removed: list) -> str:
    """A numbering marker alone on a line (``第一条`` / ``（二）``) with its text on the next
    line is joined with that line (``第一条 为了…``), unless the next line is numbered itself."""
    lines = text.split("\n")
    out: list[str] = []
    pending = None
    for line in lines:
        s = line.strip()
        if pending is not None:
            if not s:
                continue
            if not _NEXT_IS_MARKER.match(s):
                sep = " " if pending.startswith("第") else ""
                out.append(pending + sep + s)
                removed.append(f"bare marker joined: {pending}")
                pending = None
                continue
            out.append(pending)
            pending = None
        if _BARE_MARKER.fullmatch(s):
            pending = s
            continue
        out.append(line)
    if pending is not None:
        out.append(pending)
    return "\n".join(out)


_TOC_CHAPTER = re.compile(f"(#{{1,6}}\\s*)?第{_N}[编章]\\s*[^。；;，,：:]{{0,20}}")


def remove_toc_lines(text: str, removed: list) -> str:
    """A table of contents: two or more chapter headings (``第一章 总则`` / ``第二章 …``) on
    consecutive lines with nothing under them. All but the last of such a run are dropped
    (the last one heads the text that follows)."""
    lines = text.split("\n")
    idx = [i for i, line in enumerate(lines) if line.strip()]
    drop: set[int] = set()
    run: list[int] = []
    for i in idx + [None]:
        if i is not None and _TOC_CHAPTER.fullmatch(lines[i].strip()):
            run.append(i)
            continue
        if len(run) >= 2:
            drop.update(run[:-1])
        run = []
    for i in sorted(drop):
        removed.append(f"table of contents: {lines[i].strip()[:40]}")
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


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
    remove_html_fragments,
    strip_trailing_replacement_chars,
    repair_mojibake,
    remove_question_mark_runs,
    remove_pinyin,
    remove_toneless_pinyin,
    to_simplified,
    remove_inline_watermarks,
    remove_injected_symbols,
    join_spaced_out_text,
    join_cjk_spaces,
    fullwidth_punctuation,
    collapse_punctuation,
    remove_furniture,
    remove_box_drawing_rows,
    join_docsite_page_chunks,
    split_title_run_in,
    split_run_in_articles,
    split_embedded_numbering,
    join_bare_markers,
    remove_toc_lines,
    reflow_pdf_lines,
    rejoin_broken_paragraphs,
    tidy_lines,
]

_ONLY_FOR: dict[Callable[[str, list], str], set[str]] = {reflow_pdf_lines: {"pdf"}}


def normalize(text: str, kind: str = "text") -> tuple[str, list[str]]:
    """Apply :data:`PIPELINE` to raw text; returns ``(clean_text, removed_notes)``."""
    removed: list[str] = []
    for rule in PIPELINE:
        allowed = _ONLY_FOR.get(rule)
        if allowed is not None and kind not in allowed:
            continue
        text = rule(text, removed)
    return text, removed
