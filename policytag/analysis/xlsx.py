"""Safe Excel workbooks for the analysis exports.

Every cell is written as a value: strings that Excel would read as a formula (starting
with ``=`` ``+`` ``-`` ``@``) get a leading ``'``, characters Excel forbids are dropped,
NaN becomes an empty cell. Each sheet has a bold frozen header row, an autofilter over
its table and column widths fitted to the content (CJK characters count double). The
file appears complete or not at all.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

FORMULA_PREFIXES = ("=", "+", "-", "@")
MAX_WIDTH = 60
MIN_WIDTH = 6


@dataclass
class Sheet:
    """One worksheet: a table (``df``) with its header, or free text lines (``lines``)."""

    name: str
    df: "Any" = None                      # pandas.DataFrame
    lines: Sequence[str] | None = None    # a text sheet (about / legend): one line per row
    max_width: int = MAX_WIDTH


def safe_value(v: Any) -> Any:
    """The value as it goes into a cell: no live formula, no illegal characters, no NaN."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if v is None:
        return None
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalars
        try:
            v = v.item()
        except (AttributeError, ValueError):
            pass
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            return None
    if isinstance(v, (list, tuple, set)):
        v = "；".join(str(x) for x in v)
    if isinstance(v, str):
        v = ILLEGAL_CHARACTERS_RE.sub("", v)
        if v.startswith(FORMULA_PREFIXES):
            v = "'" + v
        return v
    if isinstance(v, (bool, int, float)):
        return v
    return str(v)


def display_width(v: Any) -> int:
    s = "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in s)


def write_workbook(path: str | os.PathLike, sheets: Sequence[Sheet]) -> Path:
    """Write the sheets to ``path`` (``.xlsx``) atomically."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    for sh in sheets:
        ws = wb.create_sheet(_sheet_title(sh.name))
        if sh.lines is not None:
            for i, line in enumerate(sh.lines, 1):
                c = ws.cell(row=i, column=1)
                c.value = safe_value(line)
                if isinstance(c.value, str):
                    c.data_type = "s"
            ws.column_dimensions["A"].width = min(120, max([display_width(x) for x in sh.lines] + [10]) + 2)
            continue
        df = sh.df
        columns = [str(c) for c in df.columns]
        widths = [display_width(c) for c in columns]
        for j, name in enumerate(columns, 1):
            c = ws.cell(row=1, column=j)
            c.value = safe_value(name)
            c.data_type = "s"
            c.font = Font(bold=True)
            c.alignment = Alignment(vertical="center", wrap_text=False)
        for i, rec in enumerate(df.itertuples(index=False, name=None), 2):
            for j, v in enumerate(rec, 1):
                val = safe_value(v)
                c = ws.cell(row=i, column=j)
                c.value = val
                if isinstance(val, str):
                    c.data_type = "s"  # never a formula
                elif isinstance(val, float):
                    c.number_format = "0.0" if abs(val) < 1e6 else "#,##0"
                widths[j - 1] = max(widths[j - 1], display_width(val))
        for j, w in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(j)].width = max(MIN_WIDTH, min(sh.max_width, w + 2))
        ws.freeze_panes = "A2"
        if columns:
            last = get_column_letter(len(columns))
            ws.auto_filter.ref = f"A1:{last}{max(1, len(df) + 1)}"
    buf = io.BytesIO()
    wb.save(buf)
    _atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def _sheet_title(name: str) -> str:
    bad = '[]:*?/\\'
    return "".join("_" if ch in bad else ch for ch in name)[:31] or "sheet"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
