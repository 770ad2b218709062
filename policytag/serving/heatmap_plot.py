"""The theme × measure heat map as a picture (PNG / SVG) with Chinese labels.

Uses matplotlib's Agg backend and a CJK font found on the machine (Noto Sans CJK, Source
Han Sans, WenQuanYi, Microsoft YaHei, PingFang); measure columns are grouped under their
family (supply / environment / demand), totals are the last row and column, and the
caption names the document, the model version and the date.
"""

from __future__ import annotations

import io
from typing import Any
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: pictures only

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

CJK_FONT_FILES = ["NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf", "SourceHanSansSC-Regular.otf",
                  "wqy-microhei.ttc", "msyh.ttc", "PingFang.ttc"]
CJK_FAMILIES = ["Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Micro Hei",
                "Microsoft YaHei", "PingFang SC"]
FAMILY_COLOURS = {"供给型": "#dcfce7", "Supply-side": "#dcfce7", "环境型": "#e0e7ff", "Environment-side": "#e0e7ff",
                  "需求型": "#ffedd5", "Demand-side": "#ffedd5"}  # as in app.css (.pt-fam-*)


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of a CJK font matplotlib can use (registered on first call), or None."""
    have = {f.name for f in font_manager.fontManager.ttflist}
    for fam in CJK_FAMILIES:
        if fam in have:
            return fam
    roots = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts",
             Path("/System/Library/Fonts"), Path("C:/Windows/Fonts")]
    for root in roots:
        if not root.exists():
            continue
        for name in CJK_FONT_FILES:
            for f in root.rglob(name):
                font_manager.fontManager.addfont(str(f))
                bold = f.with_name(f.name.replace("Regular", "Bold"))
                if bold != f and bold.exists():
                    font_manager.fontManager.addfont(str(bold))
                return font_manager.FontProperties(fname=str(f)).get_name()
    return None


def plot_heatmap(heat: pd.DataFrame, caption: str, fmt: str = "png") -> bytes:
    """``heat``: :func:`policytag.serving.exports.heat_frame` (family/measure columns, totals last)."""
    font = cjk_font()
    rc: dict[Any, Any] = {"font.family": [font] if font else ["sans-serif"], "svg.fonttype": "path", "axes.unicode_minus": False}
    with plt.rc_context(rc):
        n_rows, n_cols = heat.shape
        fig, ax = plt.subplots(figsize=(1.0 + 0.78 * n_cols, 1.6 + 0.42 * n_rows), dpi=150)
        vals = heat.values.astype(float)
        body = vals[:-1, :-1]
        vmax = max(1.0, float(body.max()) if body.size else 1.0)
        shown = np.full_like(vals, np.nan)
        shown[:-1, :-1] = body
        ax.imshow(shown, cmap="Blues", vmin=0, vmax=vmax * 1.15, aspect="auto")
        for i in range(n_rows):
            for j in range(n_cols):
                total = i == n_rows - 1 or j == n_cols - 1
                if total:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, color="#f3f4f6", zorder=1))
                v = int(vals[i, j])
                dark = not total and v > 0.6 * vmax
                ax.text(j, i, str(v) if v or total else "", ha="center", va="center", fontsize=8.5, zorder=2,
                        color="white" if dark else "#111827", fontweight="bold" if total else "normal")
        ax.set_xticks(range(n_cols), [c[1] for c in heat.columns], fontsize=8.5)
        ax.set_yticks(range(n_rows), list(heat.index), fontsize=8.5)
        ax.tick_params(top=False, bottom=False, left=False, labeltop=False)
        for s in ax.spines.values():
            s.set_visible(False)
        _family_band(ax, [c[0] for c in heat.columns])
        ax.axhline(n_rows - 1.5, color="#6b7280", lw=0.8)
        ax.axvline(n_cols - 1.5, color="#6b7280", lw=0.8)
        fig.text(0.01, 0.01, caption, fontsize=8, color="#374151", ha="left", va="bottom")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        buf = io.BytesIO()
        meta = {"Title": caption, "Description": caption}
        fig.savefig(buf, format=fmt, bbox_inches="tight", metadata=meta)  # the caption is in the file's metadata too
        plt.close(fig)
    return buf.getvalue()


def _family_band(ax, fams: list[str]) -> None:
    """Family names above their measure columns, on a coloured band."""
    start = 0
    for j in range(1, len(fams) + 1):
        if j == len(fams) or fams[j] != fams[start]:
            colour = FAMILY_COLOURS.get(fams[start], "#f3f4f6")
            ax.add_patch(Rectangle((start - 0.5, -1.45), j - start, 0.85, color=colour, clip_on=False))
            ax.text((start + j - 1) / 2, -1.02, fams[start], ha="center", va="center", fontsize=9, fontweight="bold")
            start = j
    ax.set_ylim(ax.get_ylim()[0], -1.5)
