"""Quantified targets: the promises of a clause that carry numbers.

``extract_targets(clause)`` finds every quantity + unit that states what a policy will
achieve, provide or require (``建设省级科普基地350家以上``, ``比例达到16%``,
``每年培训科技辅导员200人次以上``, ``奖金10万元``), with

- the **indicator** it measures: the noun phrase the number counts (``省级科普基地``),
- the **comparator** (``>=`` 以上/不少于/至少, ``>`` 超过/余, ``=`` 达到/为, ``~`` 左右/约,
  ``<=`` 以下/不超过, ``+`` 增长/提高 by),
- the **deadline** (``到2025年`` -> ``2025``, ``“十四五”期间`` -> ``十四五``,
  ``通过3—5年时间`` -> ``3-5年``), from the clause or else from its heading path,
- the **period** of a recurring target (``每年``, ``每周``, ``每届``),
- the clause's themes and measures.

Not targets: years, dates and clock times, durations, ages (``60岁及以上``), article and
item numbers (``第十条``), ordinals (``第五届``), document numbers (``〔2021〕26号``),
list markers, phone numbers and codes, numbers inside names and titles (``“千会帮千村计划”``,
``百名专家``, ``5G``), counts of a plan's own parts (``5项提升行动``, ``6个方面``), an
indefinite ``一个/一批``, rate denominators (``每服务1小时``), and statistics of the past or
present (``截至…已…``, ``2018年…为4.93%`` when the document is from 2019, ``组建了…``).
The rules are in this module; ``benchmarks/targets_eval.py`` measures them against
``tests/fixtures/targets_gold.jsonl`` (see ``docs/targets.md``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from policytag.analysis.numerals import is_idiomatic, parse_number, to_halfwidth

if TYPE_CHECKING:
    import pandas as pd

# --------------------------------------------------------------------------- vocabulary

# measure words / units, longest first; "个百分点" is reported as "百分点"
UNITS = sorted("""个百分点 百分点 平方米 平方公里 公里 人次 场次 课时 学时 小时 万元 亿元 元 个 家 名 所 场 次 人 位 项 座
支 部 种 期 批 天 户 册 份 件 篇 套 台 辆 处 站 条 门 节 本 幅 类 间 张 集 亩 米 块 组 队 款 轮 倍 幢 栋
""".split(), key=len, reverse=True)
# a unit character that is really the start of a word (部门, 名称, 期间 ...)
_NOT_UNIT_AFTER = {
    "名": "称单义额录片牌", "部": "门署分长队委属", "期": "间末满刊", "处": "理室长", "家": "庭长属乡",
    "所": "有在属以得谓", "站": "点式", "人": "员才口群民们大士物类格力", "天": "府然津下地气空",
    "场": "所馆景地合面", "次": "数序要", "项": "目", "条": "例件", "本": "市地届单省区县级着部",
    "批": "准", "类": "型别似", "座": "谈", "位": "置于", "台": "湾账", "门": "类户槛票",
    "队": "伍", "组": "织建成", "集": "中团聚体", "节": "约能日",
}
_TIME_AFTER = re.compile(r"\s*(?:周岁|岁|周年|世纪|年|月|日|号|时|点|分(?!之)|秒|:|：)")
_MULT = r"(?:万亿|万|亿|千(?![米克瓦]))"
_ARABIC = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_CN = r"[零〇○一二两三四五六七八九十百千万亿]+(?:点[零〇一二三四五六七八九]+)?"
_ONE = rf"(?:{_ARABIC}(?:\s*{_MULT})?|{_CN})"
_QTY = re.compile(rf"(?P<pct>百分之)?(?P<num>{_ONE})(?:\s*(?P<sep>[-—–~～至到])\s*(?P<num2>{_ONE}))?")
_PLAN_NAME = re.compile(r"^十[一二三四五六七八九]五$")

_AFTER_CMP = [("及以上", ">="), ("以上", ">="), ("及以下", "<="), ("以下", "<="), ("以内", "<="),
              ("左右", "~"), ("上下", "~")]
_BEFORE_CMP = [("不少于", ">="), ("不低于", ">="), ("至少", ">="), ("不超过", "<="), ("不高于", "<="),
               ("超过", ">"), ("突破", ">"), ("逾", ">"), ("超", ">"),
               ("提升至", "="), ("提升到", "="), ("提高到", "="), ("提高至", "="), ("增加到", "="),
               ("增长到", "="), ("增加至", "="), ("保持在", "="), ("达到", "="), ("为", "="), ("达", "="),
               ("约", "~"), ("近", "~"), ("增长", "+"), ("提高", "+"), ("增加", "+"), ("提升", "+")]
_STRUCT_HEADS = ("行动", "工程", "任务", "举措", "原则", "方面", "部分", "阶段", "人群", "子项目", "内容",
                 "部门", "环节", "板块", "领域", "层面", "类别", "维度", "步骤", "重点", "措施", "方向")
# verbs that take the counted noun as object: "建设 350家 省级科普基地" puts the noun on the right
_VERBS = sorted("""建设 建立 建成 创建 培养 培育 培训 资助 扶持 遴选 推出 打造 招募 组建 举办 开展 认定 选派 发放
设立 实现 新增 新建 完成 形成 引进 评选 表彰 命名 支持 吸引 发展 提供 组织 开发 创作 制作 出版 配备 建好 办好
拥有 造就 覆盖 选拔 推荐 评定 授予 奖励 补助 安排 投入 设置 开设 开办 搭建 培植 认证 挂牌 录用 吸纳 带动
帮扶 服务 惠及 接待 举行 召开 编印 印发 推广 创办 推动 保障 建 办 评 选 育 训 招 设 达成 累计认定 认定""".split(),
                key=len, reverse=True)
_LEAD_STRIP = sorted("""其中 并且 并 和 及 同时 另外 此外 重点 努力 力争 争取 确保 计划 预计 将 要 全市 全省 全县 全区
全国 全社会 全州 全镇 累计 新增 每年 年均 每生 其 以及 还 再 共 总计 合计""".split(), key=len, reverse=True)
_TRAIL_STRIP = sorted([w for w, _ in _BEFORE_CMP] + "力争 争取 要 将 累计 从目前 从 目前 已 共 总计 合计".split(),
                      key=len, reverse=True)
_CONNECTORS = ("与", "和", "及", "以及", "或", "、")

_DEADLINE_RES = [
    (re.compile(r"(?:力争|争取|计划|预计)?(?:到|至|于|在)\s*(?P<y>\d{4})\s*年(?:底|末|年底)?(?:前|以前)?"), "year"),
    (re.compile(r"(?P<y>\d{4})\s*年(?:底|末)?(?:前|以前)"), "year"),
    (re.compile(r"“?(?P<p>十[一二三四五六七八九]五)”?\s*(?:期间|时期|末期|末|规划期)"), "plan"),
    (re.compile(r"通过\s*(?P<a>\d+|[一二三四五六七八九十两]+)\s*[-—–~～至到]\s*(?P<b>\d+|[一二三四五六七八九十两]+)\s*年"), "span"),
    (re.compile(r"(?P<a>\d+|[一二三四五六七八九十两]+)\s*年(?:行动)?(?:期满|计划|内|时间)"), "dur"),
]
_LEADING_YEAR = re.compile(r"^\s*(?:\d+[.、．]\s*)?(?P<y>\d{4})\s*年\s*[，,]")
_PLAN_YEARS = {"十一五": (2006, 2010), "十二五": (2011, 2015), "十三五": (2016, 2020), "十四五": (2021, 2025),
               "十五五": (2026, 2030), "十六五": (2031, 2035)}
_PERIOD = re.compile(r"每(?P<u>年|月|周|季度|季|届|期|天|日|学期)|(?P<avg>年均)|^(?P<bare>年)(?=[^\d\s年])")

_REPORT = re.compile(
    r"截至|截止|据统计|目前|现有|以来|本次|此次|这次|建有|设有|配有|共有|阅读过|浏览|点击"
    r"|已(?:达|超|有|经|开展|建|完成|累计|惠及|占|向|形成|成为|覆盖|培训|举办|组织|发放|配发|吸引)"
    r"|(?<![为除])了(?![解不])"
    r"|包括(?=\s*(?:\d+|[一二三四五六七八九两]+)\s*[个家名所项座])")
_FUTURE = re.compile(
    r"(?:到|至)\s*\d{4}\s*年|\d{4}\s*年(?:底|末)?前|力争|争取|(?<!军)将(?!军)|计划|确保|预计|目标|拟|新增|逐步|期满"
    r"|(?<![主重需纲摘概只])要(?![求点素])|提升至|提升到|提高到|提高至|增加到|增长到|增加至|通过\s*\d")
_ASPECT_LE = re.compile(r"(?<![为除])了(?![解不])")
_ATTEND = re.compile(r"^\s*(?:多|余)?\s*(?:人|人次|名)[^，,；;。]{0,12}?(?:参加|聆听|出席|参与|观看|到场)")
_PINYIN = re.compile(r"\([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]{1,6}\)")
_BOUNDARY = "，,；;。！？!?：:"
_OPEN_CLOSE = {"《": "》", "“": "”", "〔": "〕", "[": "]", "【": "】", "「": "」", "‘": "’"}
_LIST_MARKER = re.compile(r"^\s*(?:第[一二三四五六七八九十百零〇\d]+[条章节款项]\s*|[(（]?[一二三四五六七八九十\d]+[)）、.．]\s*)+")


@dataclass
class Target:
    """One quantified promise of one clause (JSON-serializable with :meth:`to_dict`)."""

    doc_id: str
    clause_id: str
    text: str                      # the quantity as written: "350家以上"
    quantity: float                # in base units: "60万人" -> 600000 (unit 人)
    unit: str                      # "家", "%", "人次", "元", "" (none written)
    indicator: str                 # the noun phrase counted: "省级科普基地"
    comparator: str | None = None  # ">=", ">", "=", "~", "<=", "+" or None
    quantity_max: float | None = None  # upper end of a range ("2-3名")
    deadline: str | None = None    # "2025", "十四五", "3-5年"
    deadline_text: str | None = None
    period: str | None = None      # "每年", "每周", "每届"
    span: tuple[int, int] | None = None  # of ``text`` in the clause text
    themes: list[str] = field(default_factory=list)
    measures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["span"] = list(self.span) if self.span is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Target":
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        if kw.get("span") is not None:
            kw["span"] = tuple(kw["span"])
        return cls(**kw)


@dataclass
class _Cand:
    start: int
    end: int           # end of the whole quantity (unit and trailing comparator included)
    num_end: int
    value: float
    value_max: float | None
    unit: str
    comparator: str | None
    left_np: str = ""


# --------------------------------------------------------------------------- public


def doc_year(doc_id: str) -> int | None:
    """The year in a doc id (``kunshan-2023`` -> 2023), or None."""
    m = re.search(r"(?<!\d)((?:19|20)\d{2})(?!\d)", doc_id or "")
    return int(m.group(1)) if m else None


_year_in_id = doc_year  # extract_targets' ``doc_year`` argument shadows the function


def extract_targets(clause: Any, doc_year: int | None = None) -> list[Target]:
    """The quantified targets of one clause (a tagged row, a ``Clause`` or a plain string).

    ``doc_year`` (default: the year in the clause's doc id) tells a baseline year
    (``2018年…为4.93%`` in a 2019 document) from a target year (``2025年，建设…``).
    """
    doc_id, clause_id, text, context, themes, measures = _fields(clause)
    if doc_year is None:
        doc_year = _year_in_id(doc_id)
    t, index = _clean(text)
    cands = _candidates(t, doc_year)
    out: list[Target] = []
    prev: _Cand | None = None
    for c in cands:
        left_raw, left, right = _neighbours(t, c, prev)
        c.left_np = left
        prev_np = prev.left_np if prev else ""
        prev = c
        if _is_report(t, c, doc_year):
            continue
        period = _period(t, c, prev_np)
        if _is_small_reference(t, c, left_raw, period):
            continue
        indicator = _choose_indicator(left_raw, left, right) or prev_np
        dl, dl_text = _deadline(t, c.start, context, doc_year)
        out.append(Target(
            doc_id=doc_id, clause_id=clause_id, text=t[c.start:c.end], quantity=_num(c.value), unit=c.unit,
            indicator=indicator, comparator=c.comparator,
            quantity_max=_num(c.value_max) if c.value_max is not None else None,
            deadline=dl, deadline_text=dl_text, period=period,
            span=(index[c.start], index[c.end - 1] + 1), themes=list(themes), measures=list(measures)))
    return out


def targets_from_rows(rows: Iterable[Any], doc_years: dict[str, int] | None = None) -> list[Target]:
    """Targets of every row (tagged rows, gold clauses), in row order."""
    out: list[Target] = []
    for r in rows:
        did = _fields(r)[0]
        out.extend(extract_targets(r, doc_year=(doc_years or {}).get(did)))
    return out


TABLE_COLUMNS = ["doc_id", "clause_id", "indicator", "quantity", "quantity_max", "unit", "comparator", "deadline",
                 "period", "text", "themes", "measures", "clause"]


def targets_table(targets: Sequence[Target], rows: Sequence[Any] | None = None, taxonomy=None,
                  names: str = "zh") -> "pd.DataFrame":  # noqa: F821
    """One line per target. ``themes``/``measures`` are joined label names (``names``: zh or id);
    ``clause`` is the clause text when ``rows`` are given."""
    import pandas as pd

    from policytag.data.taxonomy import load_taxonomy

    tax = taxonomy or load_taxonomy()
    texts = {}
    for r in rows or []:
        did, cid, text, *_ = _fields(r)
        texts[(did, cid)] = text

    def label(i: str) -> str:
        return tax[i].zh if names == "zh" else i

    recs = []
    for tg in targets:
        recs.append({
            "doc_id": tg.doc_id, "clause_id": tg.clause_id, "indicator": tg.indicator, "quantity": tg.quantity,
            "quantity_max": tg.quantity_max, "unit": tg.unit, "comparator": tg.comparator or "",
            "deadline": tg.deadline or "", "period": tg.period or "", "text": tg.text,
            "themes": "、".join(label(i) for i in tg.themes), "measures": "、".join(label(i) for i in tg.measures),
            "clause": texts.get((tg.doc_id, tg.clause_id), ""),
        })
    return pd.DataFrame(recs, columns=TABLE_COLUMNS)


# --------------------------------------------------------------------------- internals


def _fields(clause: Any) -> tuple[str, str, str, str, list[str], list[str]]:
    if isinstance(clause, str):
        return "", "", clause, "", [], []
    get = clause.get if isinstance(clause, dict) else (lambda k, d=None: getattr(clause, k, d))
    return (get("doc_id", "") or "", get("clause_id", "") or "", get("text", "") or "", get("context", "") or "",
            list(get("themes", None) or []), list(get("measures", None) or []))


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(float(v), 6)


def _clean(text: str) -> tuple[str, list[int]]:
    """Half-width digits, pinyin glosses ``(pu)`` removed; ``index[i]`` maps back to ``text``."""
    text = to_halfwidth(text)
    keep = [True] * len(text)
    for m in _PINYIN.finditer(text):
        for i in range(m.start(), m.end()):
            keep[i] = False
    index = [i for i, k in enumerate(keep) if k]
    return "".join(text[i] for i in index), index + [len(text)]


def _enclosed(t: str, pos: int) -> bool:
    """Is ``pos`` inside 《》, “”, 〔〕, [] or 【】?"""
    stack: list[str] = []
    for ch in t[:pos]:
        if ch in _OPEN_CLOSE:
            stack.append(_OPEN_CLOSE[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
        elif ch == '"':
            if stack and stack[-1] == '"':
                stack.pop()
            else:
                stack.append('"')
    return bool(stack)


def _value(s: str) -> float | None:
    s = s.replace(" ", "")
    try:
        return parse_number(s)
    except ValueError:
        return None


def _unit_at(t: str, i: int) -> tuple[str, int]:
    """The unit starting at ``t[i]`` (after spaces): (normalized unit, end), or ("", i)."""
    j = i
    while j < len(t) and t[j] == " ":
        j += 1
    if t.startswith("%", j):
        return "%", j + 1
    for u in UNITS:
        if t.startswith(u, j):
            nxt = t[j + len(u)] if j + len(u) < len(t) else ""
            if len(u) == 1 and nxt and nxt in _NOT_UNIT_AFTER.get(u, ""):
                return "", i
            if u in ("万元", "亿元"):
                return "元", j + len(u)  # multiplier handled by the caller
            return ("百分点" if u.endswith("百分点") else u), j + len(u)
    return "", i


def _not_a_quantity(t: str, m: re.Match) -> bool:
    """A number match that its surroundings show is not a quantity (idiom, ordinal, code, date, ...)."""
    s, e = m.start(), m.end()
    num = m.group("num")
    if m.group("pct") is None and not re.search(r"\d", num):
        if is_idiomatic(num) or _PLAN_NAME.match(num):
            return True
    if m.group("pct") is None and num and num[0] in "十" and _PLAN_NAME.match(num[:3]):
        return True
    if s > 0 and t[s - 1] == "第":
        return True  # ordinal / article number
    if s > 0 and (t[s - 1].isascii() and t[s - 1].isalnum() or t[s - 1] in "._"):
        return True  # part of a code or a name like 5G / 2.0 after letters
    if _TIME_AFTER.match(t, e):
        return True  # year, date, time, age
    if e < len(t) and t[e].isascii() and t[e].isalpha():
        return True  # 5G, 3D
    if s > 0 and t[s - 1] in "等这" or t[max(0, s - 2):s] in ("这些", "上述"):
        return True  # 等14个部门: counts an enumeration
    if _enclosed(t, s):
        return True  # inside a title, a quote or a document number
    return False


def _candidates(t: str, doc_year: int | None) -> list[_Cand]:
    out: list[_Cand] = []
    for m in _QTY.finditer(t):
        if _not_a_quantity(t, m):
            continue
        s, e = m.start(), m.end()
        num = m.group("num")
        v = _value(num)
        if v is None:
            continue
        v2 = _value(m.group("num2")) if m.group("num2") else None
        pct = m.group("pct") is not None
        # multiplier in a "1000万元" / "1.5亿元" unit
        mult = 1.0
        j = e
        inside = None
        k = j
        while k < len(t) and t[k] == " ":
            k += 1
        if k < len(t) and t[k] in "余多":
            inside, j = ">", k + 1
        unit, ue = _unit_at(t, j)
        if unit == "元" and t[j:ue].strip().startswith(("万", "亿")):
            mult = 10_000.0 if t[j:ue].strip()[0] == "万" else 100_000_000.0
        if pct:
            unit, ue = "%", (ue if unit == "%" else j)
        if not unit and not pct:
            # no unit written: a multiplier (400万) or a comparator (1000以上) still makes a quantity
            if not re.search(_MULT + r"$", num.replace(" ", "")) or not re.search(r"\d", num):
                if not any(t.startswith(w, j) for w, _ in _AFTER_CMP):
                    continue
            ue = j
            if m.group("sep") and not m.group("num2"):
                continue
        elif unit and m.group("sep") and m.group("sep") == "到" and v2 is None:
            continue
        if _TIME_AFTER.match(t, ue) and unit in ("",):
            continue
        # office names: 立法二处, 综合一处
        if unit == "处" and not re.search(r"\d", num) and s > 0 and "\u4e00" <= t[s - 1] <= "\u9fff" \
                and not inside and not _before_cmp(t, s):
            continue
        # party congress and session ordinals: 十九届, 十二届二次全会, 二十届中共中央
        if (s > 0 and t[s - 1] == "届") or re.match(r"\s*(?:次|中)?(?:全会|全体会议|党代会|代表大会)", t[ue:]) \
                or (unit == "次" and re.match(r"[、，]?[一二三四五六七八九十]*次?(?:全会|会议)", t[ue:])):
            continue
        # durations of an event: (共6天)
        if unit in ("天", "小时") and t[max(0, s - 1):s] == "共":
            continue
        strong_before = _before_cmp(t, s) not in (None, "=")
        # indefinite article: 一个 / 一批 / 一支 without a real comparator
        if num == "一" and not inside and not any(t.startswith(w, ue) for w, _ in _AFTER_CMP) \
                and not strong_before and not t[max(0, s - 1):s] in ("只", "仅", "每"):
            continue
        # counts of the plan's own structure: 5项提升行动, 6个方面, 14个省直部门
        if unit and _structural(t, ue):
            continue
        # rate denominators: 每服务1小时, 每10万人
        if re.search(r"每(?![年月周日天季届期])[\u4e00-\u9fff]{0,2}\s*$", t[max(0, s - 4):s]):
            continue
        cmp_after, end = None, ue
        for w, c in _AFTER_CMP:
            if t.startswith(w, ue):
                cmp_after, end = c, ue + len(w)
                break
        comparator = cmp_after or inside or _before_cmp(t, s)
        out.append(_Cand(s, end, e, v * mult, (v2 * mult) if v2 is not None else None,
                         unit if unit or not pct else "%", comparator))
    # drop candidates that overlap an earlier one
    kept: list[_Cand] = []
    for cand in out:
        if kept and cand.start < kept[-1].end:
            continue
        kept.append(cand)
    return kept


def _before_cmp(t: str, s: int) -> str | None:
    left = t[max(0, s - 6):s].rstrip()
    for w, c in sorted(_BEFORE_CMP, key=lambda x: len(x[0]), reverse=True):
        if left.endswith(w):
            return c
    return None


def _structural(t: str, ue: int) -> bool:
    """Counts of the plan's own parts (5项提升行动, 三项举措做好…, 6个方面) or of a list that
    follows (进行6个主题活动：…)."""
    m = re.match(r"[^，,；;。、和与及：:（(“”\"]{0,10}", t[ue:])
    np_ = m.group(0) if m else ""
    head = np_[:6]
    if any(h in head for h in _STRUCT_HEADS) or np_.startswith("部门"):
        return True
    nxt = ue + len(np_)
    return nxt < len(t) and t[nxt] in "：:"


def _neighbours(t: str, c: _Cand, prev: _Cand | None) -> tuple[str, str, str]:
    """(raw left segment, cleaned left NP, cleaned right NP) around a candidate."""
    lb = 0
    for i in range(c.start - 1, -1, -1):
        if t[i] in _BOUNDARY or t[i] == "、":
            lb = i + 1
            break
    if prev is not None and prev.end > lb:
        lb = prev.end
    left_raw = t[lb:c.start]
    # right: to the next boundary or the next number
    rb = len(t)
    for i in range(c.end, len(t)):
        if t[i] in _BOUNDARY:
            rb = i
            break
    nxt = _QTY.search(t, c.end)
    stopped_at_number = False
    if nxt and nxt.start() < rb and re.search(r"\d|[一二三四五六七八九两十]", nxt.group("num")) \
            and _unit_at(t, nxt.end())[0]:
        rb = nxt.start()
        stopped_at_number = True
    right_raw = t[c.end:rb]
    if stopped_at_number and "、" in right_raw:
        right_raw = right_raw[:right_raw.rfind("、")]
    return left_raw, _clean_left(left_raw), _clean_right(right_raw)


def _strip_quotes(s: str) -> str:
    return s.strip().strip("“”\"「」『』‘’《》 ").strip()


def _clean_left(s: str) -> str:
    s = _LIST_MARKER.sub("", s)
    for _ in range(8):
        before = s
        s = s.strip()
        for d, _kind in _DEADLINE_RES:
            m = d.match(s)
            if m:
                s = s[m.end():]
        s = re.sub(r"^每(?:季度|学期|年|月|周|季|届|期|天|日|生|人|位|个)", "", s)
        s = re.sub(r"^年(?=[^\d年])", "", s) if not re.match(r"^年[度龄轻]", s) else s
        for w in _LEAD_STRIP:
            if s.startswith(w) and len(s) > len(w):
                s = s[len(w):]
                break
        for v in _VERBS:
            if s.startswith(v) and len(s) > len(v):
                s = s[len(v):]
                break
        for w in _TRAIL_STRIP:
            if s.endswith(w):
                s = s[: -len(w)]
                break
        if s == before:
            break
    return _strip_quotes(s)


def _clean_right(s: str) -> str:
    s = s.strip()
    s = re.sub(r"^[(（][^)）]*[)）]", "", s).strip()  # a leading aside
    if "的" in s:
        head = s[s.rfind("的") + 1:]
        if head.strip():
            s = head
    s = re.sub(r"[(（](?:如|含|包括|见|即)[^)）]*[)）]?$", "", s)
    if "等" in s:
        s = s[: s.find("等")]
    s = _strip_quotes(s)
    for w in ("参赛", "参加", "参与"):
        if s.endswith(w) and len(s) > len(w):
            s = s[: -len(w)]
    while s and s.endswith(_CONNECTORS):
        s = s[:-1]
    return _strip_quotes(s)


def _ends_with_verb(s: str) -> bool:
    s = s.rstrip()
    return any(s.endswith(v) for v in _VERBS if len(v) > 1) or s.endswith(("建", "办", "评", "选", "育", "训", "招", "设"))


def _choose_indicator(left_raw: str, left: str, right: str) -> str:
    raw = left_raw.rstrip()
    if right.startswith(("参加", "参与", "参观", "接受", "受益")):
        return right  # "3000人次以上参加区级科普护照活动": the participants of X
    if raw.endswith(_CONNECTORS):
        return right or left
    bare = raw
    for w in _TRAIL_STRIP:  # "安排不少于1000万元科普经费": the verb before the comparator
        if bare.endswith(w):
            bare = bare[: -len(w)].rstrip()
            break
    if _ends_with_verb(bare) or not left:
        return right or left
    return left


def _is_small_reference(t: str, c: _Cand, left_raw: str, period: str | None) -> bool:
    """"两场讲座结束后", "结合五个新城建设": a small count in Chinese numerals, without a
    comparator, period or an action verb before it, names a known set rather than a target."""
    written = t[c.start:c.num_end]
    return (not re.search(r"\d", written) and c.value < 10 and c.comparator is None and period is None
            and not _ends_with_verb(left_raw))


def _is_report(t: str, c: _Cand, doc_year: int | None) -> bool:
    """A statistic of the past or present, not a promise."""
    before = t[:c.start]
    last_report = max((m.start() for m in _REPORT.finditer(t) if m.start() < c.start), default=-1)
    last_future = max((m.start() for m in _FUTURE.finditer(t) if m.start() < c.start), default=-1)
    for m in re.finditer(r"(?<![到至于])(?P<y>\d{4})\s*年", before):
        if _enclosed(t, m.start()):
            continue
        y = int(m.group("y"))
        if doc_year is not None and y < doc_year:
            last_report = max(last_report, m.start())
        elif doc_year is not None and y >= doc_year and _LEADING_YEAR.match(t[m.start():] if m.start() == 0 else t[m.start() - 1:].lstrip("，,")):
            last_future = max(last_future, m.start())
    for m in re.finditer(r"(?<!到)“?(?P<p>十[一二三四五]五)”?\s*期末", before):
        span = _PLAN_YEARS.get(m.group("p"))
        if doc_year is None or (span and span[1] < doc_year):
            last_report = max(last_report, m.start())
    if last_report > last_future:
        return True
    whole_future = _FUTURE.search(t) is not None
    if not whole_future and (re.search(r"本次|此次|这次", t) or _ASPECT_LE.search(t)):
        return True
    # 了 later in the same sub-clause: "近120名…参加了本次培训"
    sub_end = len(t)
    for i in range(c.end, len(t)):
        if t[i] in _BOUNDARY:
            sub_end = i
            break
    if _ASPECT_LE.search(t, c.end, sub_end):
        return True
    # attendance: 200多人参加启动仪式, 400余人现场聆听
    if re.search(r"[多余]", t[c.num_end:c.num_end + 2]) or t[max(0, c.start - 1):c.start] in ("近", "约"):
        if _ATTEND.match(t, c.num_end) or re.match(r"[^，,；;。]{0,12}?(?:参加|聆听|出席|参与|观看|到场)", t[c.end:]):
            return True
    return False


def _deadline(t: str, pos: int, context: str, doc_year: int | None) -> tuple[str | None, str | None]:
    best: tuple[int, str, str] | None = None
    for rx, kind in _DEADLINE_RES:
        for m in rx.finditer(t, 0, pos):
            if _enclosed(t, m.start()) or _in_parens_range(t, m.start()):
                continue
            norm = _norm_deadline(m, kind)
            if norm is None:
                continue
            if best is not None and best[0] <= m.start() < best[0] + len(best[2]):
                continue  # inside a longer match: "通过3—5年时间" is 3-5年, not 5年
            if best is None or m.start() > best[0]:
                best = (m.start(), norm, m.group(0))
    lead = _LEADING_YEAR.match(t)
    if lead and lead.start("y") < pos:
        y = int(lead.group("y"))
        if (doc_year is None or y >= doc_year) and (best is None or lead.start() > best[0]):
            best = (lead.start(), str(y), lead.group(0).rstrip("，, "))
    if best is not None:
        return best[1], best[2]
    if context:
        for rx, kind in _DEADLINE_RES:
            found = rx.search(context)
            if found and not _enclosed(context, found.start()):
                norm = _norm_deadline(found, kind)
                if norm:
                    return norm, found.group(0)
    return None, None


def _in_parens_range(t: str, pos: int) -> bool:
    """Inside "(2021—2025年)": a title's period, not a deadline."""
    lo = max(t.rfind("(", 0, pos), t.rfind("（", 0, pos))
    hi = max(t.rfind(")", 0, pos), t.rfind("）", 0, pos))
    return lo > hi


def _norm_deadline(m: re.Match, kind: str) -> str | None:
    if kind == "year":
        return m.group("y")
    if kind == "plan":
        return m.group("p")
    a = _value(m.group("a"))
    if a is None:
        return None
    if kind == "span":
        b = _value(m.group("b"))
        return f"{int(a)}-{int(b)}年" if b is not None else None
    return f"{int(a)}年"


def _period(t: str, c: _Cand, prev_np: str) -> str | None:
    lb = 0
    for i in range(c.start - 1, -1, -1):
        if t[i] in _BOUNDARY or t[i] == "、":
            lb = i + 1
            break
    seg = t[lb:c.start].lstrip()
    found = None
    for m in _PERIOD.finditer(seg):
        if m.group("u"):
            found = "每" + m.group("u")
        else:
            found = "每年"
    return found
