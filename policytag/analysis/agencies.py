"""Who does what: responsible agencies per clause, their roles, and agency × label matrices.

The segmenter puts the agencies of a responsibility note (``(责任单位:市教育局、市科协等,各区镇)``,
``牵头单位：…``) on every clause of the provision (``row["agencies"]``). Here they are

1. **split and cleaned** (:func:`split_agency_names`): ``等`` dropped, ``市科协等各区镇`` and
   ``…,各区镇`` become separate entries, a role word (``市科技局牵头``) is read off;
2. **normalized** (:func:`normalize_agency`) with ``agency_aliases.yaml``: ``昆山市科学技术协会``,
   ``市科学技术协会`` and ``市科协`` are ``市科协``; ``江西省科学技术厅`` is ``省科技厅``; a bare
   ``科协`` takes the document's usual level; ``市委宣传部(市文明办)`` is ``市委宣传部``;
3. given a **role** (:func:`agency_roles`): ``lead`` or ``support``. Where the text says so
   (``由A、B牵头，C配合``, ``A牵头``, ``配合单位：C``) that decides (basis ``牵头``/``配合``…);
   otherwise the first-listed agency of a note leads (basis ``first-listed``) and the others
   support (``listed``), the usual convention of Chinese responsibility notes.

:func:`agency_matrix` counts, per canonical agency, the clauses that list it and carry each
measure (or theme); :func:`analyze_agencies` builds the matrices across documents and per document.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from policytag.analysis.tally import NONE_ID, NONE_ZH
from policytag.data.taxonomy import Taxonomy, load_taxonomy
from policytag.text.segmentation import split_outside_brackets

ALIASES_FILE = Path(__file__).with_name("agency_aliases.yaml")
LEVELS = ("县市区", "区县", "县区", "自治区", "自治州", "省", "市", "州", "盟", "区", "县", "旗", "镇", "乡", "街道")
LEAD_WORDS = ("牵头负责", "负责牵头", "牵头", "负责", "主办", "主责")
SUPPORT_WORDS = ("配合", "参与", "协助", "协同", "参加", "协办")
_LABEL_ROLE = [(re.compile(r"(?:牵头单位|牵头部门|主办单位|责任主体)\s*[:：]"), "lead"),
               (re.compile(r"(?:配合单位|参与单位|协办单位|协同单位)\s*[:：]"), "support"),
               (re.compile(r"(?:责任单位|责任部门)\s*[:：]"), None)]


@dataclass
class AgencyMention:
    """One agency named for one clause."""

    doc_id: str
    clause_id: str
    name: str                 # canonical: 市科协
    raw: str                  # as written: 昆山市科学技术协会
    role: str                 # "lead" | "support"
    basis: str                # "牵头", "配合", "label", "first-listed", "listed", "only"
    kind: str = "agency"      # "agency" | "collective" (各区镇, 成员单位)
    source: str = "note"      # "note" (row agencies) | "text" (found in the clause text)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class AgencyAnalysis:
    """Agency mentions and their matrices, across documents and per document."""

    mentions: list[AgencyMention]
    measures: "Any"                      # DataFrame agency × measure (+ 无, + 条款数)
    themes: "Any"                        # DataFrame agency × theme (+ 无, + 条款数)
    by_doc_measures: dict[str, "Any"] = field(default_factory=dict)
    by_doc_themes: dict[str, "Any"] = field(default_factory=dict)
    roles: "Any" = None                  # DataFrame agency × (lead, support) clause counts
    doc_ids: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- aliases


@dataclass(frozen=True)
class Aliases:
    bodies: dict[str, str]           # variant body -> canonical body
    canonical_bodies: frozenset[str]
    names: dict[str, str]            # whole name -> canonical
    collective: tuple[re.Pattern, ...]


@functools.lru_cache(maxsize=4)
def load_aliases(path: str | None = None) -> Aliases:
    """The alias table (default: ``agency_aliases.yaml`` beside this module)."""
    data = yaml.safe_load(Path(path or ALIASES_FILE).read_text(encoding="utf-8")) or {}
    bodies: dict[str, str] = {}
    for canon, variants in (data.get("bodies") or {}).items():
        bodies[canon] = canon
        for v in variants or []:
            bodies[str(v)] = canon
    names = {str(k): str(v) for k, v in (data.get("names") or {}).items()}
    coll = tuple(re.compile(p) for p in data.get("collective_patterns") or [])
    return Aliases(bodies=bodies, canonical_bodies=frozenset((data.get("bodies") or {}).keys()), names=names,
                   collective=coll)


# --------------------------------------------------------------------------- names


def split_agency_names(raw: str | Iterable[str]) -> list[tuple[str, str | None, str | None]]:
    """``"市教育局、市科协等,各区镇"`` -> ``[("市教育局", None, None), ("市科协", None, None), ("各区镇", None, None)]``.

    Separators outside brackets split; ``等`` ends an entry (``市科协等各区镇`` is two); role
    words are read off (``("市科技局", "lead", "牵头")`` for ``市科技局牵头``); a label
    (``牵头单位：``/``配合单位：``) sets the role of the names after it (basis ``"label"``).
    Items are (name, role or None, basis or None).
    """
    items = [raw] if isinstance(raw, str) else list(raw)
    out: list[tuple[str, str | None, str | None]] = []
    for item in items:
        text = str(item or "")
        label_role: str | None = None
        # label segments: 牵头单位：A、B；配合单位：C
        pieces: list[tuple[str, str | None]] = []
        pos = 0
        marks = sorted(((m.start(), m.end(), role) for rx, role in _LABEL_ROLE for m in rx.finditer(text)))
        for a, b, role in marks:
            if a > pos:
                pieces.append((text[pos:a], label_role))
            label_role, pos = role, b
        pieces.append((text[pos:], label_role))
        for chunk, role in pieces:
            for name in split_outside_brackets(chunk):
                for part in re.split(r"等(?=[\u4e00-\u9fff])", name):
                    part = re.sub(r"等(?:单位|部门|有关单位|有关部门|相关单位|相关部门)?$", "", part.strip()).strip()
                    part = re.sub(r"^(?:由|及|和|以及)", "", part).strip()
                    if not part:
                        continue
                    name2, word_role = _strip_role(part)
                    if not name2:
                        continue
                    if word_role:
                        out.append((name2, word_role, "牵头" if word_role == "lead" else "配合"))
                    else:
                        out.append((name2, role, "label" if role else None))
    return out


def _strip_role(name: str) -> tuple[str, str | None]:
    m = re.search(r"[(（](牵头|配合|参与|协助|负责)[)）]$", name)
    if m:
        return name[: m.start()].strip(), "lead" if m.group(1) in ("牵头", "负责") else "support"
    for w in LEAD_WORDS:
        if name.endswith(w) and len(name) > len(w) + 1:
            return name[: -len(w)].strip(), "lead"
    for w in SUPPORT_WORDS:
        if name.endswith(w) and len(name) > len(w) + 1:
            return name[: -len(w)].strip(), "support"
    return name, None


def is_collective(name: str, aliases: Aliases | None = None) -> bool:
    al = aliases or load_aliases()
    return any(p.search(name) for p in al.collective)


def agency_level(name: str, aliases: Aliases | None = None) -> str | None:
    """The level prefix of a normalized local agency name (市科协 -> 市), or None."""
    al = aliases or load_aliases()
    parsed = _parse_level(name, al)
    if parsed:
        return parsed[0]
    m = re.match(r"^团(省|市|县|区)委$", name)
    return m.group(1) if m else None


def _parse_level(name: str, al: Aliases) -> tuple[str, str] | None:
    """(level, canonical body) when ``name`` is [place][level][known body]."""
    for i in range(0, min(len(name), 8)):
        for lvl in LEVELS:
            if name.startswith(lvl, i):
                body = name[i + len(lvl):]
                if body in al.bodies:
                    return lvl, al.bodies[body]
    return None


def normalize_agency(name: str, level: str | None = None, aliases: Aliases | None = None) -> str:
    """The canonical name of one agency (see the module docstring). ``level`` is used for a
    bare body such as ``科协`` (the document's usual level)."""
    al = aliases or load_aliases()
    s = re.sub(r"\s+", "", str(name or "")).strip("。.;；,，")
    if s in al.names:
        return al.names[s]
    # a bracketed second name of the same office: 市委宣传部(市文明办)
    outer = re.sub(r"[(（][^)）]*[)）]$", "", s)
    if outer and outer != s and (outer in al.names or _parse_level(outer, al) or outer in al.bodies):
        s = outer
    if s in al.names:
        return al.names[s]
    m = re.match(r"^(?:共青团)?[\u4e00-\u9fff]{0,6}?(省|市|县|区)委$", s)
    if m and (s.startswith("共青团") or s.startswith("团")):
        return f"团{m.group(1)}委"
    parsed = _parse_level(s, al)
    if parsed:
        lvl, body = parsed
        return f"{lvl}{body}"
    if s in al.bodies:
        body = al.bodies[s]
        return f"{level}{body}" if level else body
    return s


def document_levels(rows: Sequence[dict], aliases: Aliases | None = None) -> dict[str, str]:
    """The most common agency level of each document (for bare names such as ``科协``)."""
    al = aliases or load_aliases()
    per: dict[str, Counter] = {}
    for r in rows:
        for raw, _, _ in split_agency_names(r.get("agencies") or []):
            lvl = agency_level(normalize_agency(raw, None, al), al)
            if lvl:
                per.setdefault(r.get("doc_id", ""), Counter())[lvl] += 1
    return {d: c.most_common(1)[0][0] for d, c in per.items() if c}


# --------------------------------------------------------------------------- roles


_TEXT_LEAD = re.compile(r"(?:由)?(?P<names>[^，,。；;：:]{2,80}?)(?:牵头负责|负责牵头|牵头)")
_TEXT_SUPPORT = re.compile(r"(?P<names>[^，,。；;：:]{2,120}?)(?:等部门|等单位)?(?:配合|参与|协助|协同)")
_AGENCY_LIKE = re.compile(r"(?:局|委|厅|部|办|会|协|联|院|站|中心|政府|团|所|馆|校)$")


_AGENCY_NAME = re.compile(r"^(?:省|市|区|县|镇|乡|州|团|各)[\u4e00-\u9fff]{1,12}(?:局|委|厅|部|办|科协|联|院|中心|站|集团|政府)$")


def looks_like_agency(name: str, aliases: Aliases | None = None) -> bool:
    """Is a canonical name an agency (市科协, 省人社厅, 中国科协, 各县区科技局), not a common noun
    (社会, 高校, 政府)?"""
    al = aliases or load_aliases()
    return bool(_parse_level(name, al) or name in set(al.names.values()) or _AGENCY_NAME.match(name)
                or re.match(r"^团(?:省|市|县|区)委$", name) or re.match(r"^中国|^国家|^全国|^中共", name)
                and _AGENCY_LIKE.search(name))


def _text_roles(text: str, level: str | None, al: Aliases) -> dict[str, str]:
    """Canonical name -> role for agencies the clause text itself assigns (``A牵头``, ``B配合``)."""
    roles: dict[str, str] = {}
    for rx, role in ((_TEXT_LEAD, "lead"), (_TEXT_SUPPORT, "support")):
        for m in rx.finditer(text or ""):
            for raw, _, _ in split_agency_names(m.group("names")):
                raw = re.sub(r"^(?:由|会同|并)", "", raw)
                name = normalize_agency(raw, level, al)
                if looks_like_agency(name, al):
                    roles.setdefault(name, role)
    return roles


def agency_roles(row: dict, level: str | None = None, aliases: Aliases | None = None,
                 include_text: bool = True) -> list[AgencyMention]:
    """The agencies of one row with canonical names and roles (see the module docstring).

    With ``include_text``, agencies that the clause text names with a role word
    (``由省科技厅、省科协牵头``) are added when the note does not list them (``source="text"``).
    """
    al = aliases or load_aliases()
    doc_id, clause_id = row.get("doc_id", ""), row.get("clause_id", "")
    entries = split_agency_names(row.get("agencies") or [])
    text_roles = _text_roles(row.get("text", ""), level, al) if include_text else {}
    out: list[AgencyMention] = []
    seen: set[str] = set()
    individual = [i for i, (raw, _, _) in enumerate(entries) if not is_collective(normalize_agency(raw, level, al), al)]
    first = individual[0] if individual else (0 if entries else None)
    for i, (raw, word_role, word_basis) in enumerate(entries):
        name = normalize_agency(raw, level, al)
        if name in seen:
            continue
        seen.add(name)
        kind = "collective" if is_collective(name, al) else "agency"
        if word_role:
            role, basis = word_role, word_basis or ("牵头" if word_role == "lead" else "配合")
        elif name in text_roles:
            role, basis = text_roles[name], ("牵头" if text_roles[name] == "lead" else "配合")
        elif len(entries) == 1:
            role, basis = "lead", "only"
        elif i == first:
            role, basis = "lead", "first-listed"
        else:
            role, basis = "support", "listed"
        out.append(AgencyMention(doc_id, clause_id, name, raw, role, basis, kind, "note"))
    for name, role in text_roles.items():
        if name not in seen:
            seen.add(name)
            kind = "collective" if is_collective(name, al) else "agency"
            out.append(AgencyMention(doc_id, clause_id, name, name, role, "牵头" if role == "lead" else "配合",
                                     kind, "text"))
    return out


def agency_mentions(rows: Sequence[dict], aliases: Aliases | None = None, include_text: bool = True) -> list[AgencyMention]:
    """:func:`agency_roles` of every row, with each document's usual level for bare names."""
    al = aliases or load_aliases()
    levels = document_levels(rows, al)
    out: list[AgencyMention] = []
    for r in rows:
        out.extend(agency_roles(r, levels.get(r.get("doc_id", "")), al, include_text=include_text))
    return out


# --------------------------------------------------------------------------- matrices


def agency_matrix(rows: Sequence[dict], dimension: str = "measures", *, role: str | None = None,
                  names: str = "zh", taxonomy: Taxonomy | None = None, include_collective: bool = True,
                  mentions: Sequence[AgencyMention] | None = None, include_text: bool = True) -> "Any":
    """Agency × measure (or theme) counts: clauses that list the agency and carry the label.

    Rows: canonical agency names, by number of clauses; columns: the labels in taxonomy
    order (Chinese names with ``names="zh"``, ids with ``"id"``), ``无`` (clauses without
    such a label) and ``条款数`` (all clauses of the agency). ``role`` keeps only ``lead`` or
    ``support`` mentions.
    """
    import pandas as pd

    tax = taxonomy or load_taxonomy()
    if dimension not in ("measures", "themes"):
        raise ValueError(f"dimension must be 'measures' or 'themes', got {dimension!r}")
    ids = tax.measures if dimension == "measures" else tax.themes
    ms = list(mentions) if mentions is not None else agency_mentions(rows, include_text=include_text)
    by_clause = {(r.get("doc_id", ""), r.get("clause_id", "")): r for r in rows}
    counts: "OrderedDict[str, Counter]" = OrderedDict()
    total: Counter = Counter()
    for mnt in ms:
        if role and mnt.role != role:
            continue
        if not include_collective and mnt.kind == "collective":
            continue
        r = by_clause.get((mnt.doc_id, mnt.clause_id))
        if r is None:
            continue
        labels = [x for x in (r.get(dimension) or []) if x in ids]
        c = counts.setdefault(mnt.name, Counter())
        for x in labels:
            c[x] += 1
        if not labels:
            c["(none)"] += 1
        total[mnt.name] += 1
    cols = ids + ["(none)"]
    order = sorted(counts, key=lambda a: (-total[a], list(counts).index(a)))
    data = [[counts[a].get(c, 0) for c in cols] + [total[a]] for a in order]
    col_names = ([tax[c].zh if names == "zh" else c for c in ids] + [NONE_ZH if names == "zh" else NONE_ID]
                 + ["条款数" if names == "zh" else "clauses"])
    df = pd.DataFrame(data, index=order, columns=col_names, dtype=int)
    df.index.name = "责任单位" if names == "zh" else "agency"
    return df


def role_table(mentions: Sequence[AgencyMention], names: str = "zh") -> "Any":
    """Per agency: clauses as lead, as support, and on what basis the roles were given."""
    import pandas as pd

    recs: "OrderedDict[str, Counter]" = OrderedDict()
    for m in mentions:
        c = recs.setdefault(m.name, Counter())
        c[m.role] += 1
        c[f"basis:{m.basis}"] += 1
    rows = []
    for a, c in recs.items():
        rows.append({"agency": a, "lead": c.get("lead", 0), "support": c.get("support", 0),
                     "explicit": c.get("basis:牵头", 0) + c.get("basis:配合", 0) + c.get("basis:label", 0),
                     "first_listed": c.get("basis:first-listed", 0) + c.get("basis:only", 0)})
    df = pd.DataFrame(rows, columns=["agency", "lead", "support", "explicit", "first_listed"])
    df = df.sort_values(["lead", "support"], ascending=False, kind="stable").reset_index(drop=True)
    if names == "zh":
        df = df.rename(columns={"agency": "责任单位", "lead": "牵头(条款数)", "support": "配合(条款数)",
                                "explicit": "文本明确角色", "first_listed": "按首位列出判定牵头"})
    return df


def analyze_agencies(rows: Sequence[dict], taxonomy: Taxonomy | None = None, names: str = "zh",
                     include_text: bool = True) -> AgencyAnalysis:
    """Mentions, the agency × measure and agency × theme matrices (all documents and per document)
    and the role table."""
    tax = taxonomy or load_taxonomy()
    mentions = agency_mentions(rows, include_text=include_text)
    doc_ids = list(dict.fromkeys(r.get("doc_id", "") for r in rows))
    by_m, by_t = {}, {}
    for d in doc_ids:
        drows = [r for r in rows if r.get("doc_id", "") == d]
        dm = [m for m in mentions if m.doc_id == d]
        if not dm:
            continue
        by_m[d] = agency_matrix(drows, "measures", names=names, taxonomy=tax, mentions=dm)
        by_t[d] = agency_matrix(drows, "themes", names=names, taxonomy=tax, mentions=dm)
    return AgencyAnalysis(
        mentions=mentions,
        measures=agency_matrix(rows, "measures", names=names, taxonomy=tax, mentions=mentions),
        themes=agency_matrix(rows, "themes", names=names, taxonomy=tax, mentions=mentions),
        by_doc_measures=by_m, by_doc_themes=by_t, roles=role_table(mentions, names=names), doc_ids=doc_ids)


def mentions_table(mentions: Sequence[AgencyMention], rows: Sequence[dict] | None = None,
                   taxonomy: Taxonomy | None = None) -> "Any":
    """One line per (clause, agency) with Chinese headers, labels and the clause text."""
    import pandas as pd

    tax = taxonomy or load_taxonomy()
    by_clause = {(r.get("doc_id", ""), r.get("clause_id", "")): r for r in rows or []}
    role_zh = {"lead": "牵头", "support": "配合"}
    basis_zh = {"牵头": "文本写明牵头", "配合": "文本写明配合", "label": "标注(牵头单位/配合单位)",
                "first-listed": "首位列出", "listed": "列出", "only": "唯一列出"}
    recs = []
    for m in mentions:
        r = by_clause.get((m.doc_id, m.clause_id), {})
        recs.append({
            "文档": m.doc_id, "条款编号": m.clause_id, "责任单位": m.name, "原文名称": m.raw,
            "角色": role_zh.get(m.role, m.role), "角色依据": basis_zh.get(m.basis, m.basis),
            "类型": "集合" if m.kind == "collective" else "单位", "来源": "责任单位注" if m.source == "note" else "条款文本",
            "主题": "、".join(tax[t].zh for t in (r.get("themes") or []) if t in tax.themes),
            "措施类型": "、".join(tax[x].zh for x in (r.get("measures") or []) if x in tax.measures),
            "条款": r.get("text", ""),
        })
    return pd.DataFrame(recs, columns=["文档", "条款编号", "责任单位", "原文名称", "角色", "角色依据", "类型", "来源",
                                       "主题", "措施类型", "条款"])
