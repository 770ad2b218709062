"""Write quantified targets: an XLSX table (Chinese headers) and an overview figure."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Sequence

from policytag.analysis.plotting import NO_CJK_FONT, apply_font, save_figure, setup_matplotlib
from policytag.analysis.targets import Target, targets_table
from policytag.analysis.xlsx import Sheet, write_workbook
from policytag.errors import InputError

HEADERS_ZH = {"doc_id": "文档", "clause_id": "条款编号", "indicator": "指标", "quantity": "数量", "quantity_max": "数量上限",
              "unit": "单位", "comparator": "比较", "deadline": "期限", "period": "周期", "text": "原文数字",
              "themes": "主题", "measures": "措施类型", "clause": "条款"}
COMPARATOR_ZH = {">=": "不少于", ">": "超过", "=": "达到", "~": "约", "<=": "不超过", "+": "增长"}
NO_DEADLINE = "未写明"


def targets_sheet_table(targets: Sequence[Target], rows: Sequence[dict] | None = None):
    df = targets_table(targets, rows)
    df["comparator"] = [COMPARATOR_ZH.get(c, c) for c in df["comparator"]]
    return df.rename(columns=HEADERS_ZH)


def about_lines(targets: Sequence[Target], source: str = "") -> list[str]:
    docs = list(dict.fromkeys(t.doc_id for t in targets))
    return [
        "policytag targets：条款中的量化目标",
        f"文档：{', '.join(docs) or '（无）'}；目标 {len(targets)} 个；{source}".rstrip("；"),
        "",
        "数量：换算为基本单位（60万人 → 600000，单位“人”；1.5亿元 → 150000000，单位“元”）；“数量上限”用于区间（2-3名）。",
        "比较：不少于（以上/至少）、超过（超/余）、达到（达/为）、约（左右）、不超过（以下）、增长（增长/提高…个百分点）。",
        "期限：条款中最近的“到2025年”“2025年底前”“‘十四五’期间”“通过3—5年”，条款中没有时取其标题路径中的期限。",
        "不计为目标：年份、日期、年龄、条号、届次、文号、序号、电话、名称中的数字（千会帮千村、5G）、"
        "计划自身的结构（5项行动、6个方面）、基期或已完成的统计（截至…已…）。",
        "准确率见 docs/targets.md（benchmarks/targets_eval.py）。",
    ]


def write_targets_xlsx(targets: Sequence[Target], path: str | os.PathLike, rows: Sequence[dict] | None = None,
                       source: str = "") -> Path:
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise InputError(f"{path}: the targets workbook must end in .xlsx")
    return write_workbook(path, [Sheet("目标", targets_sheet_table(targets, rows), max_width=60),
                                 Sheet("说明", lines=about_lines(targets, source))])


def plot_targets(targets: Sequence[Target], path: str | os.PathLike, taxonomy=None, caption: str = "",
                 dpi: int = 150, doc_ids: Sequence[str] | None = None) -> list[str]:
    """Two panels: targets per document by deadline (``doc_ids``: documents to show, also those
    without targets), and targets per measure type of their clause."""
    from policytag.data.taxonomy import load_taxonomy

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"{path}: the figure must end in .png or .svg")
    tax = taxonomy or load_taxonomy()
    plt = setup_matplotlib()
    warnings = [] if apply_font() else [NO_CJK_FONT]
    docs = list(dict.fromkeys([*(doc_ids or []), *(t.doc_id for t in targets)]))
    deadlines = sorted({t.deadline or NO_DEADLINE for t in targets}, key=lambda d: (d == NO_DEADLINE, d))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 0.5 * max(len(docs), 6) + 2.5), constrained_layout=True)
    left = [0] * len(docs)
    cmap = plt.get_cmap("tab10")
    for k, d in enumerate(deadlines):
        vals = [sum(1 for t in targets if t.doc_id == doc and (t.deadline or NO_DEADLINE) == d) for doc in docs]
        ax1.barh(docs, vals, left=left, color=cmap(k % 10) if d != NO_DEADLINE else "#bbbbbb", label=f"期限 {d}")
        left = [a + b for a, b in zip(left, vals)]
    ax1.invert_yaxis()
    ax1.set_xlabel("量化目标数")
    ax1.set_title("各文档的量化目标（按期限）")
    ax1.legend(fontsize=8, loc="lower right")
    per_m = Counter(m for t in targets for m in (t.measures or ["(none)"]))
    ms = [m for m in tax.measures if per_m.get(m)] + (["(none)"] if per_m.get("(none)") else [])
    ax2.barh([tax[m].zh if m != "(none)" else "无" for m in ms], [per_m[m] for m in ms],
             color=[tax[m].color if m != "(none)" else "#bbbbbb" for m in ms])
    ax2.invert_yaxis()
    ax2.set_xlabel("量化目标数")
    ax2.set_title("量化目标所在条款的措施类型")
    if caption:
        fig.text(0.01, 0.002, caption, fontsize=9, color="#444444", ha="left", va="bottom")
        fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    save_figure(fig, path, dpi)
    return warnings
