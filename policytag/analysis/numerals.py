"""Chinese and Arabic numerals -> numbers.

``parse_number("三百五十") == 350``, ``parse_number("两万") == 20000``,
``parse_number("1.2万") == 12000``, ``parse_number("二〇三五") == 2035``,
``parse_number("百分之十五") == 15`` (the percent sign is the caller's business).
"""

from __future__ import annotations

import re

DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
          "六": 6, "七": 7, "八": 8, "九": 9}
SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
BIG_UNITS = {"万": 10_000, "亿": 100_000_000}
CN_CHARS = "".join(DIGITS) + "".join(SMALL_UNITS) + "".join(BIG_UNITS)
MULTIPLIERS = {"千": 1000, "万": 10_000, "亿": 100_000_000, "万亿": 1_000_000_000_000}

_ARABIC = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$|^\d+(?:\.\d+)?$")
_FULLWIDTH = str.maketrans("０１２３４５６７８９．，％", "0123456789.,%")


def to_halfwidth(text: str) -> str:
    """Full-width digits, point, comma and percent sign to ASCII (same length)."""
    return text.translate(_FULLWIDTH)


def parse_chinese(text: str) -> float:
    """Value of a Chinese numeral (``三百五十``, ``十五``, ``两万三千``, ``一点五``, ``二〇三五``).

    Raises ``ValueError`` for anything that is not a Chinese numeral.
    """
    if not text or any(ch not in CN_CHARS + "点" for ch in text):
        raise ValueError(f"not a Chinese numeral: {text!r}")
    if "点" in text:
        whole, _, frac = text.partition("点")
        if not frac or any(ch not in DIGITS for ch in frac):
            raise ValueError(f"not a Chinese numeral: {text!r}")
        return (parse_chinese(whole) if whole else 0) + float("0." + "".join(str(DIGITS[c]) for c in frac))
    if all(ch in DIGITS for ch in text):  # digit by digit: 二〇三五, 三
        return float("".join(str(DIGITS[c]) for c in text))
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in DIGITS:
            digit = DIGITS[ch]
        elif ch in SMALL_UNITS:
            section += (1 if digit is None else digit) * SMALL_UNITS[ch]
            digit = None
        else:  # 万 / 亿
            section += digit or 0
            if section == 0:
                section = 1
            if BIG_UNITS[ch] > 10_000:  # 亿 scales everything before it
                total = (total + section) * BIG_UNITS[ch]
            else:
                total += section * BIG_UNITS[ch]
            section, digit = 0, None
    return float(total + section + (digit or 0))


def parse_number(text: str) -> float:
    """Value of an Arabic (``1,200``, ``6.2``), Chinese or mixed (``1.2万``, ``3千``) numeral,
    or a Chinese percentage (``百分之十五`` -> 15)."""
    s = to_halfwidth(text.strip())
    if s.startswith("百分之"):
        return parse_number(s[3:])
    for suffix in sorted(MULTIPLIERS, key=len, reverse=True):
        if s.endswith(suffix) and _ARABIC.match(s[: -len(suffix)] or "x"):
            return float(s[: -len(suffix)].replace(",", "")) * MULTIPLIERS[suffix]
    if _ARABIC.match(s):
        return float(s.replace(",", ""))
    return parse_chinese(s)


def is_idiomatic(text: str) -> bool:
    """A bare 百/千/万/亿 (``万家``, ``千会千人``, ``百名专家``, ``百万``) is an idiom, not a count
    (``十万`` and ``一百`` are counts)."""
    return bool(text) and all(ch in "百千万亿" for ch in text)
