"""Counting tagged rows: the theme × measure matrix, measures per instrument family, per-document
summaries. Pure functions over rows (``dict`` with ``themes`` / ``measures`` / ``doc_id``), used by
the predict outputs, the app's heat map and the comparisons alike."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

NONE_ID = "(none)"
NONE_ZH = "无"

def _taxonomy(taxonomy=None):
    if taxonomy is not None:
        return taxonomy
    from policytag.data.taxonomy import load_taxonomy

    return load_taxonomy()


def heatmap_matrix(rows: Sequence[dict], taxonomy=None, include_none: bool = True,
                   names: str = "zh") -> "pd.DataFrame":  # noqa: F821
    """Clause counts, themes (rows) × measures (columns), labelled with Chinese names.

    A clause with themes T and measures M adds one to every cell (t, m). With
    ``include_none`` a row ``无`` (no specific group) and a column ``无`` (no measure) keep
    clauses that have only one of the two dimensions. ``names`` is ``zh`` (青少年),
    ``display`` (青少年 (youth)) or ``id``.
    """
    import pandas as pd

    tax = _taxonomy(taxonomy)
    counts = _pair_counts(rows, tax, include_none)
    themes = tax.themes + ([NONE_ID] if include_none else [])
    measures = tax.measures + ([NONE_ID] if include_none else [])
    df = pd.DataFrame(counts, index=themes, columns=measures)
    df.index = [_name(tax, i, names) for i in themes]
    df.columns = [_name(tax, i, names) for i in measures]
    df.index.name = "主题" if names != "id" else "theme"
    df.columns.name = "措施类型" if names != "id" else "measure"
    return df


def _name(tax, label_id: str, names: str) -> str:
    if label_id == NONE_ID:
        return {"zh": NONE_ZH, "display": f"{NONE_ZH} {NONE_ID}", "id": NONE_ID}[names]
    if names == "id":
        return label_id
    lab = tax[label_id]
    return lab.zh if names == "zh" else lab.display


def _pair_counts(rows: Sequence[dict], tax, include_none: bool) -> np.ndarray:
    themes = tax.themes + ([NONE_ID] if include_none else [])
    measures = tax.measures + ([NONE_ID] if include_none else [])
    ti = {t: i for i, t in enumerate(themes)}
    mi = {m: i for i, m in enumerate(measures)}
    counts = np.zeros((len(themes), len(measures)), dtype=np.int64)
    for r in rows:
        ts = [t for t in (r.get("themes") or []) if t in ti] or ([NONE_ID] if include_none else [])
        ms = [m for m in (r.get("measures") or []) if m in mi] or ([NONE_ID] if include_none else [])
        for t in ts:
            for m in ms:
                counts[ti[t], mi[m]] += 1
    return counts


def family_counts(rows: Sequence[dict], taxonomy=None) -> "pd.DataFrame":  # noqa: F821
    """Measure counts per instrument family (supply / environment / demand).

    Columns: ``family``, ``family_zh``, ``measure``, ``measure_zh``, ``count`` (clauses with the
    measure) and ``share`` (of all measure assignments), one row per measure, grouped by family.
    """
    import pandas as pd

    tax = _taxonomy(taxonomy)
    per = {m: 0 for m in tax.measures}
    for r in rows:
        for m in r.get("measures") or []:
            if m in per:
                per[m] += 1
    total = sum(per.values())
    recs = []
    for fam in tax.families or {}:
        for m in tax.measures:
            if tax.family_of(m) != fam:
                continue
            recs.append({
                "family": fam,
                "family_zh": (tax.families[fam] or {}).get("zh", fam),
                "measure": m,
                "measure_zh": tax[m].zh,
                "count": per[m],
                "share": (per[m] / total) if total else 0.0,
            })
    return pd.DataFrame(recs, columns=["family", "family_zh", "measure", "measure_zh", "count", "share"])


def document_summary(rows: Sequence[dict], taxonomy=None, all_label: str = "(all)") -> "pd.DataFrame":  # noqa: F821
    """Per-document counts, theme × measure, in one table (the ``OUT.summary.csv`` file).

    For every document (and a final block ``(all)`` over all documents) one line per theme
    (plus ``(none)``), with the number of clauses of the document, the number having that
    theme, and one column per measure (plus ``(none)``): the clauses having both.
    """
    import pandas as pd

    tax = _taxonomy(taxonomy)
    by_doc: "OrderedDict[str, list[dict]]" = OrderedDict()
    for r in rows:
        by_doc.setdefault(r.get("doc_id", ""), []).append(r)
    blocks = list(by_doc.items())
    if len(blocks) != 1:
        blocks.append((all_label, list(rows)))
    themes = tax.themes + [NONE_ID]
    measures = tax.measures + [NONE_ID]
    m_cols = [f"{_name(tax, m, 'zh')} ({m})" if m != NONE_ID else f"{NONE_ZH} {NONE_ID}" for m in measures]
    recs = []
    for doc_id, members in blocks:
        counts = _pair_counts(members, tax, include_none=True)
        theme_n = {t: 0 for t in themes}
        for r in members:
            ts = [t for t in (r.get("themes") or []) if t in theme_n] or [NONE_ID]
            for t in ts:
                theme_n[t] += 1
        for i, t in enumerate(themes):
            rec = {
                "doc_id": doc_id,
                "clauses": len(members),
                "theme": t,
                "theme_zh": _name(tax, t, "zh"),
                "theme_clauses": theme_n[t],
            }
            rec.update({col: int(counts[i, j]) for j, col in enumerate(m_cols)})
            recs.append(rec)
    return pd.DataFrame(recs, columns=["doc_id", "clauses", "theme", "theme_zh", "theme_clauses", *m_cols])
