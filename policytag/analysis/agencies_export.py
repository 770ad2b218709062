"""Write an :class:`~policytag.analysis.agencies.AgencyAnalysis`: XLSX workbook and a heat map.

Sheets: 责任单位×措施类型 and 责任单位×主题 (all documents), one 措施类型 sheet per document,
角色 (lead / support counts and how they were decided), 明细 (one line per clause and
agency) and 说明.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from policytag.analysis.agencies import AgencyAnalysis, mentions_table
from policytag.analysis.plotting import NO_CJK_FONT, apply_font, heatmap, save_figure, setup_matplotlib
from policytag.analysis.xlsx import Sheet, write_workbook
from policytag.errors import InputError


def _matrix_sheet(name: str, df) -> Sheet:
    out = df.reset_index()
    out.columns = [str(c) for c in out.columns]
    return Sheet(name, out)


def about_lines(analysis: AgencyAnalysis, source: str = "") -> list[str]:
    n_clauses = len({(m.doc_id, m.clause_id) for m in analysis.mentions})
    return [
        "policytag agencies：责任单位 × 措施类型 / 主题",
        f"文档：{', '.join(analysis.doc_ids)}；含责任单位的条款 {n_clauses} 条；{source}".rstrip("；"),
        "",
        "计数：列出该责任单位、且具有该措施类型（或主题）的条款数；“无”：没有该类标签的条款；“条款数”：列出该单位的全部条款。",
        "一条款可有多个措施类型，所以各列之和可大于条款数。责任单位注（如“(责任单位:…)”）适用于其所在条目的每一条款。",
        "名称规范：去掉地名、保留层级、统一简称（昆山市科学技术协会 → 市科协；江西省科学技术厅 → 省科技厅），"
        "见 policytag/analysis/agency_aliases.yaml。",
        "角色：文本写明“牵头/配合/参与”或“牵头单位：/配合单位：”时按文本；否则首位列出的单位为牵头，其余为配合。",
        "“各区镇”“成员单位”等为集合（类型=集合），不视为单一单位。",
    ]


def write_agencies_xlsx(analysis: AgencyAnalysis, path: str | os.PathLike, rows: Sequence[dict] | None = None,
                        source: str = "") -> Path:
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise InputError(f"{path}: the agencies workbook must end in .xlsx")
    sheets = [_matrix_sheet("责任单位×措施类型", analysis.measures), _matrix_sheet("责任单位×主题", analysis.themes)]
    used = {s.name for s in sheets}
    for d, df in analysis.by_doc_measures.items():
        name = f"措施-{d}"[:31]
        k = 2
        while name in used:
            name = f"措施-{d}"[:28] + f"-{k}"
            k += 1
        used.add(name)
        sheets.append(_matrix_sheet(name, df))
    sheets += [Sheet("角色", analysis.roles), Sheet("明细", mentions_table(analysis.mentions, rows), max_width=70),
               Sheet("说明", lines=about_lines(analysis, source))]
    return write_workbook(path, sheets)


def plot_agency_matrix(analysis: AgencyAnalysis, path: str | os.PathLike, top: int = 20, title: str = "",
                       caption: str = "", dpi: int = 150) -> list[str]:
    """Heat map of the ``top`` agencies (by clauses) × measure types; PNG or SVG by extension."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"{path}: the figure must end in .png or .svg")
    plt = setup_matplotlib()
    warnings = [] if apply_font() else [NO_CJK_FONT]
    df = analysis.measures.head(top)
    cols = [c for c in df.columns if c not in ("条款数", "clauses")]
    vals = df[cols].values
    fig, ax = plt.subplots(figsize=(12, 0.42 * len(df) + 2.4), constrained_layout=True)
    im = heatmap(ax, vals, [f"{a}（{n}）" for a, n in zip(df.index, df.iloc[:, -1])], cols, cmap="YlOrRd",
                 vmin=0, vmax=float(vals.max()) if vals.size else 1.0, fmt="{:.0f}",
                 title=title or "责任单位 × 措施类型（条款数；括号内为该单位的条款总数）")
    fig.colorbar(im, ax=ax, shrink=0.7, label="条款数")
    if caption:
        fig.text(0.01, 0.002, caption, fontsize=9, color="#444444", ha="left", va="bottom")
        fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    save_figure(fig, path, dpi)
    return warnings
