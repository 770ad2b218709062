"""Write a :class:`~policytag.analysis.compare.Comparison`: an XLSX workbook and a figure.

Workbook sheets (Chinese headers): 占比 (shares per group, side by side), 差异 (each group
minus the baseline, percentage points, sorted from growth to shrink), 政策工具类别
(supply / environment / demand balance), 条款 (every clause with its Chinese labels),
说明 (what was compared, when, and how the numbers are defined).

Figure (PNG or SVG by extension): one share heat map per group on a common scale, one
difference heat map per non-baseline group on a diverging scale, and a caption line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from policytag.analysis.compare import Comparison
from policytag.analysis.tally import NONE_ID, NONE_ZH
from policytag.analysis.plotting import NO_CJK_FONT, apply_font, heatmap, save_figure, setup_matplotlib
from policytag.analysis.xlsx import Sheet, write_workbook
from policytag.errors import InputError

FIGURE_SUFFIXES = (".png", ".svg")
GROUP_BY_ZH = {"doc": "文档", "input": "输入", "year": "年份", "level": "层级", "issuer": "发文机关", "genre": "文种"}


def label_zh(comparison: Comparison, label_id: str) -> str:
    return NONE_ZH if label_id == NONE_ID else comparison.taxonomy[label_id].zh


def group_label(comparison: Comparison, g: str) -> str:
    return comparison.labels.get(g) or g


def caption(comparison: Comparison, source: str = "") -> str:
    """``比较（按文档）：江西 2023（61 条）→ 四川 2023（90 条）；gold 标注；2025-01-01``."""
    parts = [f"{group_label(comparison, g)}（{comparison.n_clauses[g]} 条）" for g in comparison.groups]
    by = GROUP_BY_ZH.get(comparison.group_by, comparison.group_by)
    bits = [f"比较（按{by}）：" + " → ".join(parts)]
    if source:
        bits.append(source)
    bits.append(f"生成日期 {comparison.created}")
    return "；".join(bits)


# --------------------------------------------------------------------------- tables


def shares_table(comparison: Comparison) -> "Any":
    """Long table: 主题, 措施类型, then ``<group> 占比(%)`` and ``<group> 条款数`` per group."""
    import pandas as pd

    c = comparison
    first = c.shares[c.groups[0]]
    recs = []
    for t in first.index:
        for m in first.columns:
            rec: dict[str, Any] = {"主题": label_zh(c, t), "措施类型": label_zh(c, m)}
            for g in c.groups:
                rec[f"{group_label(c, g)} 占比(%)"] = round(float(c.shares[g].loc[t, m]), 2)
            for g in c.groups:
                rec[f"{group_label(c, g)} 条款数"] = int(c.counts[g].loc[t, m])
            recs.append(rec)
    return pd.DataFrame(recs)


def difference_table(comparison: Comparison) -> "Any":
    """主题, 措施类型, the baseline share, each group's share and its difference (百分点), 变化."""
    import pandas as pd

    c = comparison
    base = c.baseline
    bl = group_label(c, base)
    recs = []
    first = c.shares[base]
    for t in first.index:
        for m in first.columns:
            rec: dict[str, Any] = {"主题": label_zh(c, t), "措施类型": label_zh(c, m), f"{bl} 占比(%)": round(float(first.loc[t, m]), 2)}
            for g in c.groups[1:]:
                gl = group_label(c, g)
                rec[f"{gl} 占比(%)"] = round(float(c.shares[g].loc[t, m]), 2)
                rec[f"差异 {gl}−{bl}(百分点)"] = round(float(c.shares[g].loc[t, m] - first.loc[t, m]), 2)
            if len(c.groups) == 2:
                d = rec[f"差异 {group_label(c, c.groups[1])}−{bl}(百分点)"]
                rec["变化"] = "增加" if d > 0.005 else ("减少" if d < -0.005 else "持平")
            recs.append(rec)
    df = pd.DataFrame(recs)
    key = f"差异 {group_label(c, c.groups[1])}−{bl}(百分点)"
    return df.sort_values(key, ascending=False, kind="stable").reset_index(drop=True)


def families_table(comparison: Comparison) -> "Any":
    c = comparison
    df = c.families.copy()
    df["group"] = [group_label(c, g) for g in df["group"]]
    df = df.rename(columns={"group": "分组", "family_zh": "政策工具类别", "family": "类别代码", "measures": "措施分配数",
                            "measure_share": "措施分配占比(%)", "clauses": "含该类措施的条款数",
                            "clause_share": "条款占比(%)"})
    for col in ("措施分配占比(%)", "条款占比(%)"):
        df[col] = df[col].round(2)
    return df[["分组", "政策工具类别", "类别代码", "措施分配数", "措施分配占比(%)", "含该类措施的条款数", "条款占比(%)"]]


def clauses_table(comparison: Comparison) -> "Any":
    import pandas as pd

    c = comparison
    tax = c.taxonomy
    recs = []
    for g in c.groups:
        for r in c.rows[g]:
            ms = [m for m in (r.get("measures") or []) if m in tax.measures]
            fams = list(dict.fromkeys((tax.families.get(tax.family_of(m)) or {}).get("zh", "") for m in ms))
            recs.append({
                "分组": group_label(c, g), "文档": r.get("doc_id", ""), "条款编号": r.get("clause_id", ""),
                "上下文": r.get("context", ""), "条款": r.get("text", ""),
                "主题": "、".join(tax[t].zh for t in (r.get("themes") or []) if t in tax.themes),
                "措施类型": "、".join(tax[m].zh for m in ms), "政策工具类别": "、".join(fams),
                "责任单位": "、".join(r.get("agencies") or []),
            })
    return pd.DataFrame(recs, columns=["分组", "文档", "条款编号", "上下文", "条款", "主题", "措施类型", "政策工具类别", "责任单位"])


def about_lines(comparison: Comparison, source: str = "") -> list[str]:
    c = comparison
    lines = ["policytag compare：政策文本主题 × 措施类型比较", caption(c, source), ""]
    for g in c.groups:
        lines.append(f"{group_label(c, g)}：{c.n_clauses[g]} 条条款；文档 {', '.join(c.doc_ids[g])}")
    lines += ["",
              "占比：某分组中同时具有该主题与该措施类型的条款数 ÷ 该分组条款总数 × 100；一条条款可计入多个单元格。",
              "“无”行/列：没有主题或没有措施类型的条款。",
              f"差异：各分组占比减去基准分组（{group_label(c, c.baseline)}）占比，单位为百分点；正值为增加，负值为减少。",
              "政策工具类别：供给型 / 环境型 / 需求型；措施分配占比按措施标签计（每组合计 100%），条款占比为含该类措施的条款 ÷ 条款总数。"]
    return lines


def write_comparison_xlsx(comparison: Comparison, path: str | os.PathLike, source: str = "") -> Path:
    """Write the comparison workbook (see the module docstring for the sheets)."""
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise InputError(f"{path}: the comparison workbook must end in .xlsx")
    return write_workbook(path, [
        Sheet("占比", shares_table(comparison)),
        Sheet("差异", difference_table(comparison)),
        Sheet("政策工具类别", families_table(comparison)),
        Sheet("条款", clauses_table(comparison), max_width=70),
        Sheet("说明", lines=about_lines(comparison, source)),
    ])


# --------------------------------------------------------------------------- figure


def plot_comparison(comparison: Comparison, path: str | os.PathLike, source: str = "", dpi: int = 150) -> list[str]:
    """Side-by-side share heat maps, difference heat maps and a caption; PNG or SVG by extension.

    Returns warnings (e.g. no Chinese font installed)."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError(f"{path}: the figure must end in .png or .svg")
    plt = setup_matplotlib()
    warnings = [] if apply_font() else [NO_CJK_FONT]
    c = comparison
    base = c.shares[c.baseline]
    rows = [label_zh(c, t) for t in base.index]
    cols = [label_zh(c, m) for m in base.columns]
    n = len(c.groups)
    vmax_share = max(float(c.shares[g].values.max()) for g in c.groups) or 1.0
    diffs = c.differences
    vmax_diff = max([float(abs(d.values).max()) for d in diffs.values()] + [1.0])
    if n == 2:
        fig, axes = plt.subplots(1, 3, figsize=(21, 5.6), constrained_layout=True)
        share_axes, diff_axes = list(axes[:2]), [axes[2]]
    else:
        fig, axes = plt.subplots(2, n, figsize=(7 * n, 11), constrained_layout=True, squeeze=False)
        share_axes, diff_axes = list(axes[0]), list(axes[1][1:])
        axes[1][0].axis("off")
    im = None
    for ax, g in zip(share_axes, c.groups):
        im = heatmap(ax, c.shares[g].values, rows, cols, cmap="YlGnBu", vmin=0, vmax=vmax_share,
                     title=f"{group_label(c, g)}：占本文件条款的 %（{c.n_clauses[g]} 条）")
    fig.colorbar(im, ax=share_axes, shrink=0.8, label="占条款 %")
    imd = None
    bl = group_label(c, c.baseline)
    for ax, (g, d) in zip(diff_axes, diffs.items()):
        imd = heatmap(ax, d.values, rows, cols, cmap="RdBu_r", vmin=-vmax_diff, vmax=vmax_diff, signed=True,
                      title=f"差异：{group_label(c, g)} − {bl}（百分点）")
    fig.colorbar(imd, ax=diff_axes, shrink=0.8, label="百分点")
    fig.text(0.01, 0.002, caption(c, source), fontsize=9, color="#444444", ha="left", va="bottom")
    fig.get_layout_engine().set(h_pad=0.25, rect=(0, 0.03, 1, 0.97))
    save_figure(fig, path, dpi)
    return warnings
