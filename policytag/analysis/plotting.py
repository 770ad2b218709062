"""Matplotlib helpers shared by the analysis figures: a CJK font and annotated heat maps."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any, Sequence

from policytag.fileio import atomic_write

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
                "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei", "PingFang SC",
                "Heiti SC", "AR PL UMing CN", "Noto Serif CJK SC")
NO_CJK_FONT = ("no Chinese font found: labels will show as boxes. Install one (Debian/Ubuntu: "
               "`apt-get install fonts-noto-cjk`) and run again")


def setup_matplotlib() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of an installed CJK font (registering a ``fc-list :lang=zh`` file
    with matplotlib if needed), or None."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for fam in CJK_FAMILIES:
        if fam in names:
            return fam
    if shutil.which("fc-list"):
        try:
            out = subprocess.run(["fc-list", ":lang=zh", "file", "family"], capture_output=True, text=True,
                                 timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for line in out.splitlines():
            path = line.split(":")[0].strip()
            if path and Path(path).exists():
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError):
                    continue
        names = {f.name for f in font_manager.fontManager.ttflist}
        for fam in CJK_FAMILIES:
            if fam in names:
                return fam
        for line in out.splitlines():
            parts = line.split(":")
            if len(parts) > 1:
                fam = parts[1].split(",")[0].strip()
                if fam in names:
                    return fam
    return None


def apply_font() -> str | None:
    """Use the CJK font for all text of the next figures; returns its name (None: not found)."""
    import matplotlib

    fam = cjk_font()
    if fam:
        matplotlib.rcParams["font.family"] = "sans-serif"
        matplotlib.rcParams["font.sans-serif"] = [fam, "DejaVu Sans"]
    matplotlib.rcParams["axes.unicode_minus"] = False
    return fam


def heatmap(ax: Any, values: Any, rows: Sequence[str], cols: Sequence[str], *, cmap: str, vmin: float, vmax: float,
            fmt: str = "{:.1f}", title: str = "", hide_zero: bool = True, signed: bool = False) -> Any:
    """An annotated heat map on ``ax``; returns the image for a colorbar."""
    import numpy as np

    arr = np.asarray(values, dtype=float)
    im = ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, rotation=45, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=9)
    ax.set_xticks(np.arange(-0.5, len(cols), 1), minor=True)
    ax.set_yticks(np.arange(-0.5, len(rows), 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    if title:
        ax.set_title(title, fontsize=11, pad=8)
    span = max(abs(vmin), abs(vmax)) or 1.0
    for i in range(arr.shape[0]):
        for j in range(arr.shape[1]):
            v = arr[i, j]
            if hide_zero and abs(v) < 0.05:
                continue
            strong = (abs(v) / span > 0.55) if signed else ((v - vmin) / ((vmax - vmin) or 1) > 0.55)
            ax.text(j, i, (("+" if signed and v > 0 else "") + fmt.format(v)), ha="center", va="center",
                    fontsize=7.5, color="white" if strong else "#222222")
    return im


def save_figure(fig: Any, path: str | Path, dpi: int) -> Path:
    """Write a matplotlib figure to ``path`` (format from its suffix) through the one atomic
    writer (:func:`policytag.fileio.atomic_write`), then close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=path.suffix[1:].lower()))
    finally:
        plt.close(fig)

