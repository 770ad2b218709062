"""Compare the policy mix of documents or groups of documents.

``compare_documents({"江西 2023": rows_a, "四川 2023": rows_b})`` gives a :class:`Comparison`:

- ``shares[g]``: theme × measure table of group ``g`` as a share (%) of its clauses: a clause
  with themes T and measures M counts in every cell (t, m); the row / column ``(none)`` keep
  clauses that have only one dimension (as :func:`policytag.analysis.tally.heatmap_matrix`);
- ``difference(b, a)``: ``shares[b] − shares[a]`` in percentage points (default: every group
  against the first, the baseline);
- ``families``: the supply / environment / demand balance per group;
- ``cell_clauses(g, theme, measure)``: the clauses behind one cell.

Groups are built from rows by :func:`group_rows` (by document, by input, or by a metadata
key such as ``year`` or ``level``). Tables use label ids; :mod:`compare_export` writes them
with Chinese names.
"""

from __future__ import annotations

import datetime as _dt
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from policytag.errors import InputError
from policytag.analysis.tally import NONE_ID, heatmap_matrix
from policytag.data.taxonomy import Taxonomy, load_taxonomy

UNKNOWN = "(unknown)"
GROUP_KEYS_BUILTIN = ("doc", "input", "year", "level", "issuer", "genre")


@dataclass
class Comparison:
    """Side-by-side theme × measure shares of two or more groups of tagged rows."""

    groups: list[str]
    taxonomy: Taxonomy
    counts: dict[str, "Any"]            # group -> DataFrame (themes+none × measures+none), clause counts
    shares: dict[str, "Any"]            # group -> DataFrame, % of the group's clauses
    n_clauses: dict[str, int]
    doc_ids: dict[str, list[str]]
    rows: dict[str, list[dict]]
    families: "Any"                     # DataFrame: group, family, family_zh, measures, measure_share, clauses, clause_share
    group_by: str = "doc"
    created: str = field(default_factory=lambda: _dt.date.today().isoformat())
    labels: dict[str, str] = field(default_factory=dict)  # group -> display name (title) for captions

    @property
    def baseline(self) -> str:
        return self.groups[0]

    def difference(self, b: str | None = None, a: str | None = None) -> "Any":
        """``shares[b] − shares[a]`` in percentage points (default: the second group minus the first)."""
        a = a or self.baseline
        b = b or (self.groups[1] if len(self.groups) > 1 else self.groups[0])
        for g in (a, b):
            if g not in self.shares:
                raise InputError(f"unknown group {g!r}; groups are: {', '.join(self.groups)}")
        return self.shares[b] - self.shares[a]

    @property
    def differences(self) -> dict[str, "Any"]:
        """Every group against the baseline: ``{group: shares[group] − shares[baseline]}``."""
        return {g: self.difference(g, self.baseline) for g in self.groups[1:]}

    def cell_clauses(self, group: str, theme: str, measure: str) -> list[dict]:
        """The rows of ``group`` counted in cell (theme, measure); ids, Chinese names or ``(none)``/``无``."""
        if group not in self.rows:
            raise InputError(f"unknown group {group!r}; groups are: {', '.join(self.groups)}")
        t = _label_id(self.taxonomy, theme, "themes")
        m = _label_id(self.taxonomy, measure, "measures")
        return [r for r in self.rows[group] if _in_cell(r, t, m, self.taxonomy)]

    def changes(self, b: str | None = None, a: str | None = None, top: int | None = None) -> "Any":
        """The difference as a long table sorted from the largest growth to the largest shrink:
        theme, measure, share_a, share_b, diff_pp."""
        import pandas as pd

        a = a or self.baseline
        b = b or (self.groups[1] if len(self.groups) > 1 else self.groups[0])
        d = self.difference(b, a)
        recs = []
        for t in d.index:
            for m in d.columns:
                recs.append({"theme": t, "measure": m, "share_a": float(self.shares[a].loc[t, m]),
                             "share_b": float(self.shares[b].loc[t, m]), "diff_pp": float(d.loc[t, m])})
        out = pd.DataFrame(recs).sort_values("diff_pp", ascending=False, kind="stable").reset_index(drop=True)
        return out.head(top) if top else out


# --------------------------------------------------------------------------- building


def compare_documents(rows_by_group: Mapping[str, Sequence[dict]], taxonomy: Taxonomy | None = None,
                      group_by: str = "doc", labels: Mapping[str, str] | None = None) -> Comparison:
    """Compare two or more groups of tagged rows (the first group is the baseline)."""
    tax = taxonomy or load_taxonomy()
    groups = [g for g in rows_by_group]
    if len(groups) < 2:
        raise InputError(f"compare needs at least two documents or groups, got {len(groups)} "
                         f"({', '.join(groups) or 'none'}); give two inputs or a --group-by that splits them")
    counts, shares, n, docs, rows = {}, {}, {}, {}, {}
    for g in groups:
        rs = list(rows_by_group[g])
        if not rs:
            raise InputError(f"group {g!r} has no clauses")
        c = pair_counts(rs, tax)
        counts[g] = c
        shares[g] = c * (100.0 / len(rs))
        n[g] = len(rs)
        docs[g] = list(dict.fromkeys(r.get("doc_id", "") for r in rs))
        rows[g] = rs
    return Comparison(groups=groups, taxonomy=tax, counts=counts, shares=shares, n_clauses=n, doc_ids=docs,
                      rows=rows, families=family_balance(rows, tax), group_by=group_by,
                      labels=dict(labels or {}))


def pair_counts(rows: Sequence[dict], taxonomy: Taxonomy) -> "Any":
    """Clause counts, themes (+ ``(none)``) × measures (+ ``(none)``), indexed by label ids."""

    df = heatmap_matrix(rows, taxonomy, include_none=True, names="id").astype(float)
    df.index.name, df.columns.name = "theme", "measure"
    return df


def family_balance(rows_by_group: Mapping[str, Sequence[dict]], taxonomy: Taxonomy) -> "Any":
    """Per group and family: measure assignments and their share (sums to 100% per group), and
    the clauses having at least one measure of the family as a share of the group's clauses."""
    import pandas as pd

    recs = []
    for g, rs in rows_by_group.items():
        per_fam = {f: 0 for f in taxonomy.families}
        clauses_fam = {f: 0 for f in taxonomy.families}
        for r in rs:
            fams = set()
            for m in r.get("measures") or []:
                f = taxonomy.family_of(m) if m in taxonomy.measures else None
                if f in per_fam:
                    per_fam[f] += 1
                    fams.add(f)
            for f in fams:
                clauses_fam[f] += 1
        total = sum(per_fam.values())
        for f in taxonomy.families:
            recs.append({
                "group": g, "family": f, "family_zh": (taxonomy.families[f] or {}).get("zh", f),
                "measures": per_fam[f], "measure_share": 100.0 * per_fam[f] / total if total else 0.0,
                "clauses": clauses_fam[f], "clause_share": 100.0 * clauses_fam[f] / len(rs) if rs else 0.0,
            })
    return pd.DataFrame(recs, columns=["group", "family", "family_zh", "measures", "measure_share", "clauses",
                                       "clause_share"])


def group_rows(input_sets: Sequence[Any], by: str = "doc", metadata: Mapping[str, dict] | None = None,
               label_names: bool = True) -> tuple["OrderedDict[str, list[dict]]", dict[str, str]]:
    """Rows grouped for :func:`compare_documents`, and a display label per group.

    ``input_sets``: :class:`~policytag.analysis.inputs.InputSet` objects (or ``(label, rows)``
    pairs). ``by``: ``doc`` (each document), ``input`` (each command-line input), or a metadata
    key (``year``, ``level``, ``issuer`` …) looked up in the row itself, then in ``metadata``,
    then inferred (``year`` from the doc id); documents without it go to ``(unknown)``.
    Groups keep the order of first appearance, except ``year`` which is sorted.
    """
    from policytag.analysis.targets import doc_year

    metadata = metadata or {}
    groups: "OrderedDict[str, list[dict]]" = OrderedDict()
    labels: dict[str, str] = {}
    for item in input_sets:
        label, rows = (item.label, item.rows) if hasattr(item, "rows") else item
        for r in rows:
            did = r.get("doc_id", "")
            if by == "doc":
                key = did
                meta = metadata.get(did) or {}
                labels.setdefault(key, str(meta.get("short") or meta.get("title") or did) if label_names else did)
            elif by == "input":
                key = str(label)
                labels.setdefault(key, key)
            else:
                v = r.get(by)
                if v in (None, ""):
                    v = (metadata.get(did) or {}).get(by)
                if v in (None, "") and by == "year":
                    v = doc_year(did)
                key = str(v) if v not in (None, "") else UNKNOWN
                labels.setdefault(key, key)
            groups.setdefault(key, []).append(r)
    if by == "year":
        groups = OrderedDict(sorted(groups.items(), key=lambda kv: (kv[0] == UNKNOWN, kv[0])))
    return groups, labels


# --------------------------------------------------------------------------- helpers


def _label_id(tax: Taxonomy, name: str, dimension: str) -> str:
    ids = tax.themes if dimension == "themes" else tax.measures
    if name in ids or name == NONE_ID:
        return name
    if name in ("无", "none", ""):
        return NONE_ID
    for i in ids:
        lab = tax[i]
        if name in (lab.zh, lab.en, lab.display):
            return i
    raise InputError(f"unknown {dimension[:-1]} {name!r}; use one of {', '.join(ids)} (or their Chinese names) or '(none)'")


def _in_cell(r: dict, t: str, m: str, tax: Taxonomy) -> bool:
    ts = [x for x in (r.get("themes") or []) if x in tax.themes]
    ms = [x for x in (r.get("measures") or []) if x in tax.measures]
    ok_t = (not ts) if t == NONE_ID else (t in ts)
    ok_m = (not ms) if m == NONE_ID else (m in ms)
    return ok_t and ok_m
