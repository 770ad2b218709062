"""HTML and tables of the 比较 tab: pure functions of a
:class:`~policytag.serving.analyses.WorkspaceAnalysis`, no Gradio."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from policytag.analysis.compare_export import group_label
from policytag.analysis.targets import targets_table
from policytag.data.taxonomy import Taxonomy
from policytag.serving.analyses import WorkspaceAnalysis, agency_measure_rows
from policytag.serving.i18n import NONE_ID, family_name, label_name, names
from policytag.serving.render import esc

def _w(lang: str, zh: str, en: str) -> str:
    return en if lang == "en" else zh


def _empty(msg: str) -> str:
    return f'<div class="pt-empty">{esc(msg)}</div>'


def _matrix(df: pd.DataFrame, tax: Taxonomy, lang: str, *, diff: bool, title: str) -> str:
    """A theme × measure table (id-indexed) of shares (%) or differences (pp); cells are clickable."""
    vmax = max(1e-9, float(abs(df.values).max()))
    head = "".join(f'<th class="pt-mcol" title="{esc(m)}">{esc(label_name(tax, m, lang))}</th>' for m in df.columns)
    body = []
    for t in df.index:
        cells = []
        for m in df.columns:
            v = float(df.loc[t, m])
            a = 0.0 if abs(v) < 0.05 else 0.12 + 0.8 * abs(v) / vmax
            rgb = ("220,38,38" if v < 0 else "22,163,74") if diff else "37,99,235"
            fg = "#fff" if a > 0.55 else "#1f2937"
            shown = "" if abs(v) < 0.05 else (f"{v:+.1f}" if diff else f"{v:.1f}")
            tip = f"{label_name(tax, t, lang)} × {label_name(tax, m, lang)}: {shown or 0}"
            cells.append(f'<td class="pt-cell" data-t="{esc(t)}" data-m="{esc(m)}" title="{esc(tip)}" '
                         f'style="background:rgba({rgb},{a:.2f});color:{fg}">{shown}</td>')
        body.append(f'<tr><th class="pt-trow">{esc(label_name(tax, t, lang))}</th>{"".join(cells)}</tr>')
    return (f'<div class="pt-heat-wrap"><table class="pt-heat"><thead><tr><th class="pt-corner">{esc(title)}</th>'
            f'{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def families_html(a: WorkspaceAnalysis, tax: Taxonomy, lang: str = "zh") -> str:
    """Supply / environment / demand balance per document (share of measure assignments)."""
    c = a.comparison
    if c is None:
        return ""
    fams = list(tax.families)
    head = "".join(f"<th>{esc(family_name(tax, f, lang))}</th>" for f in fams)
    rows = []
    for g in c.groups:
        fam = c.families[c.families.group == g].set_index("family")
        cells = "".join(f"<td>{float(fam.loc[f, 'measure_share']):.1f}%</td>" for f in fams)
        rows.append(f'<tr><th class="pt-trow">{esc(group_label(c, g))}</th>'
                    f"<td>{c.n_clauses[g]}</td>{cells}</tr>")
    return (f'<table class="pt-heat pt-balance"><thead><tr><th class="pt-corner">{_w(lang, "文档", "document")}</th>'
            f'<th>{_w(lang, "条款数", "clauses")}</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def compare_html(a: WorkspaceAnalysis, tax: Taxonomy, lang: str = "zh") -> str:
    """Shares side by side, the differences from the first document, and the family balance."""
    if a.empty:
        return _empty(_w(lang, "先在“标注”页标注两份或更多文档，再来比较。",
                         "Tag two or more documents on the Tag tab, then compare them here."))
    c = a.comparison
    if c is None:
        return _empty(_w(lang, "比较需要至少两份文档：在“标注”页一次上传两份或更多文件（或一个 .zip）。",
                         "Comparing needs two or more documents: upload several files (or a .zip) on the Tag tab."))
    base = group_label(c, c.baseline)
    parts = [f'<div class="pt-note">{esc(_w(lang, "政策工具类别占比（占措施标签）", "Instrument family balance (share of measure labels)"))}</div>',
             families_html(a, tax, lang)]
    for g in c.groups[1:]:
        gl = group_label(c, g)
        title = _w(lang, f"差异（百分点）：{gl} − {base}", f"difference (pp): {gl} − {base}")
        parts.append(_matrix(c.difference(g, c.baseline), tax, lang, diff=True, title=title))
    for g in c.groups:
        gl = group_label(c, g)
        title = _w(lang, f"{gl}：占条款 %（{c.n_clauses[g]} 条）", f"{gl}: % of clauses ({c.n_clauses[g]})")
        parts.append(_matrix(c.shares[g], tax, lang, diff=False, title=title))
    note = _w(lang, "占比：同时具有该主题和该措施类型的条款 ÷ 文档条款数；差异为百分点（绿色增加，红色减少）。点击单元格列出其条款。",
              "Share: clauses having both labels ÷ the document's clauses; differences in percentage points "
              "(green: more, red: less). Click a cell to list its clauses.")
    parts.append(f'<div class="pt-note">{esc(note)}；{esc(a.source)}</div>')
    return "".join(parts)


def cell_clauses_html(items: Sequence[tuple[str, dict]], theme: str, measure: str, tax: Taxonomy,
                      lang: str = "zh") -> str:
    """The clauses behind one cell, grouped by document."""
    head = f"{label_name(tax, theme, lang)} × {label_name(tax, measure, lang)}"
    if not items:
        return _empty(_w(lang, f"{head}：没有条款", f"{head}: no clauses"))
    lis = []
    for doc, r in items:
        ctx = f'<span class="pt-muted">{esc(r.get("context", ""))}</span> ' if r.get("context") else ""
        labels = names(tax, r.get("themes"), lang) + " | " + names(tax, r.get("measures"), lang)
        lis.append(f'<li><b>{esc(doc)}</b> · {ctx}{esc(r.get("text", ""))} <span class="pt-muted">（{esc(labels)}）</span></li>')
    return f'<div class="pt-cell-list"><b>{esc(head)}</b>：{len(items)}<ol>{"".join(lis)}</ol></div>'


def agencies_html(a: WorkspaceAnalysis, tax: Taxonomy, lang: str = "zh", top: int = 20) -> str:
    """Agency × measure counts (canonical names; lead / supporting clauses) of the top agencies."""
    if a.empty:
        return _empty(_w(lang, "先在“标注”页标注文档。", "Tag a document on the Tag tab first."))
    df = agency_measure_rows(a, top)
    if df is None:
        return _empty(_w(lang, "这些条款没有责任单位（责任单位 / 牵头单位 注明）。",
                         "No responsible agencies in these clauses (no 责任单位 / 牵头单位 notes)."))
    roles = a.agencies.roles.set_index(a.agencies.roles.columns[0]) if a.agencies is not None else None
    cols = [c for c in df.columns if c not in ("条款数", "clauses")]
    vmax = max(1, int(df[cols].values.max()))
    head = "".join(f'<th class="pt-mcol">{esc(c)}</th>' for c in cols)
    rows = []
    for agency, r in df.iterrows():
        cells = []
        for col in cols:
            v = int(r[col])
            alpha = 0.0 if v == 0 else 0.15 + 0.85 * v / vmax
            cells.append(f'<td style="background:rgba(234,88,12,{alpha:.2f})">{v or ""}</td>')
        role = ""
        if roles is not None and agency in roles.index:
            rr = roles.loc[agency]
            role = " / ".join(str(int(x)) for x in rr.values[:2])
        rows.append(f'<tr><th class="pt-trow">{esc(agency)}</th><td>{int(r.iloc[-1])}</td><td>{esc(role)}</td>'
                    f'{"".join(cells)}</tr>')
    note = _w(lang, f"前 {len(df)} 个责任单位（规范名称）；“牵头/配合”为条款数。", f"Top {len(df)} agencies (canonical names); lead / supporting in clauses.")
    return (f'<div class="pt-heat-wrap"><table class="pt-heat"><thead><tr><th class="pt-corner">'
            f'{_w(lang, "责任单位", "agency")}</th><th>{_w(lang, "条款数", "clauses")}</th><th>{_w(lang, "牵头/配合", "lead/support")}</th>'
            f'{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div><div class="pt-note">{esc(note)}；{esc(a.source)}</div>')


def targets_frame(a: WorkspaceAnalysis, lang: str = "zh") -> pd.DataFrame:
    """The quantified targets as a table for the page (the export has every column)."""
    df: Any = targets_table(a.targets, a.rows, names="zh")
    if not len(df):
        return pd.DataFrame(columns=["doc_id", "indicator", "text", "deadline"])
    keep = [c for c in ("doc_id", "indicator", "quantity", "unit", "comparator", "deadline", "themes", "measures", "text")
            if c in df.columns]
    return df[keep]
