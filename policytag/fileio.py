"""Writing files: the one place that does it (core layer, used by every other layer).

* :func:`atomic_write_bytes` / :func:`atomic_write_text`: a reader sees the old file or the
  new one, never half of one (temporary file in the same folder, then one ``os.replace``),
  and the new file has the permissions a plain ``open(path, "w")`` gives under the user's
  umask (``mkstemp`` alone would leave ``0600``). An unwritable destination is an
  :class:`~policytag.errors.OutputError` (one line, no traceback), not an ``OSError``.
* :func:`check_not_an_input` / :func:`check_writable`: called before any work, so that an
  output that is one of the inputs (same path, same file through a link, or a file the
  inputs expand to) or that cannot be written stops the command before anything is lost.
* :func:`safe_cell`, :func:`csv_bytes`, :func:`xlsx_bytes`: spreadsheet output that a text
  starting with ``=``, ``+``, ``-``, ``@``, tab or CR cannot turn into a live formula
  (OWASP "CSV injection": such a value gets a leading ``'``; XLSX cells are written as
  strings explicitly). :func:`unsafe_cell` undoes the prefix on import, and
  :func:`is_formula` tells an import that a cell holds a formula.
"""

from __future__ import annotations

import csv
import io
import os
import math
from dataclasses import dataclass
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from policytag.errors import OutputError

# --------------------------------------------------------------------------- permissions


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ≥ 4.7)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # the classic dance: not thread-safe, hence only a fallback
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    return 0o777 & ~current_umask()


def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


# --------------------------------------------------------------------------- atomic writes


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Create ``path`` atomically: ``write(tmp_path)`` writes a temporary file beside it,
    which then replaces ``path`` in one rename. Parent folders are created as needed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"cannot write {path}: {_reason(e)}; choose a folder you can write to") from None
    try:
        os.close(fd)
        write(Path(tmp))
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {_reason(e)}; nothing was written there") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see the module docstring)."""
    return atomic_write_bytes(path, text.encode(encoding))


def normal_permissions(root: str | os.PathLike) -> None:
    """Give a finished tree the permissions ``mkdir``/``open`` would have under the umask
    (``mkdtemp`` makes ``0700`` directories and ``mkstemp`` ``0600`` files)."""
    fmode, dmode = file_mode(), dir_mode()
    for dirpath, _dirs, files in os.walk(os.fspath(root)):
        os.chmod(dirpath, dmode)
        for f in files:
            os.chmod(os.path.join(dirpath, f), fmode)


def atomic_write_dir(target: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Create the directory ``target`` atomically: ``fill(tmp_dir)`` writes the files into a
    temporary sibling, which then takes ``target``'s place. An existing directory is
    replaced only after the new one is complete."""
    target = Path(target).resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    except OSError as e:
        raise OutputError(f"cannot write {target}: {_reason(e)}; choose a folder you can write to") from None
    try:
        fill(tmp)
        normal_permissions(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
            os.replace(target, old / "d")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# --------------------------------------------------------------------------- outputs vs inputs


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: the same resolved path, or (both existing)
    the same inode (hard links, bind mounts, case-insensitive file systems)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.resolve() == pb.resolve():
            return True
    except OSError:
        pass
    try:
        return pa.exists() and pb.exists() and os.path.samefile(pa, pb)
    except OSError:
        return False


def check_not_an_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike],
                       what: str = "output") -> None:
    """Refuse an ``output`` that is one of ``inputs`` (before anything is written).

    ``inputs`` are the files a command reads: the paths given and what directories and
    patterns expanded to."""
    for inp in inputs:
        if same_file(output, inp):
            same = str(inp) if Path(inp) == Path(output) else f"{inp} (the same file)"
            raise OutputError(f"{what} {output} is also an input: {same}; writing it would destroy that input. "
                              "Choose another output file name")


def check_writable(output: str | os.PathLike, what: str = "output") -> None:
    """Refuse an ``output`` that cannot be created (no such folder that can be made, no
    permission), before any work is done."""
    p = Path(output)
    if p.is_dir():
        raise OutputError(f"{what} {p} is a directory; give a file name inside it")
    parent = p.parent
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {p}: {parent} is not a folder; choose a folder you can write to")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {p}: no permission to write in {parent}; choose a folder you can write to")
    if parent != p.parent:  # folders will be created: make sure that works (e.g. not under /proc)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot write {p}: {_reason(e)}; choose a folder you can write to") from None
    else:
        try:
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{p.name}.", suffix=".check")
        except OSError as e:
            raise OutputError(f"cannot write {p}: {_reason(e)}; choose a folder you can write to") from None
        os.close(fd)
        os.unlink(tmp)


# --------------------------------------------------------------------------- spreadsheets

#: A spreadsheet reads a cell starting with one of these as a formula (OWASP CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A value that a spreadsheet shows as text: a string starting with a formula trigger
    gets a leading ``'`` (as does one that only looks like that after its own leading
    quotes, so :func:`unsafe_cell` gives back exactly the original). Non-strings unchanged."""
    if isinstance(value, str) and value and value.lstrip("'")[:1] in FORMULA_TRIGGERS and value.lstrip("'"):
        return "'" + value
    return value


def unsafe_cell(value: Any) -> Any:
    """Undo :func:`safe_cell` (for a value read back from a CSV/XLSX file)."""
    if isinstance(value, str) and value.startswith("'") and value.lstrip("'")[:1] in FORMULA_TRIGGERS \
            and value.lstrip("'"):
        return value[1:]
    return value


def is_formula(value: Any) -> bool:
    """True for a text cell that a spreadsheet would evaluate: ``=...``, or ``+``/``-``/``@``
    followed by a call or reference (``@SUM(A1)``, ``-2+3+cmd|' /C calc'!A0``). A plain
    ``-`` ("no labels") or a text such as ``-开展培训`` is not a formula."""
    if not isinstance(value, str) or len(value) < 2:
        return False
    if value[0] == "=":
        return True
    return value[0] in "+-@" and any(ch in value for ch in "(!|")


def csv_bytes(records: Iterable[dict], columns: Sequence[str], *, bom: bool = True) -> bytes:
    """CSV (UTF-8, with a BOM so Excel reads Chinese; CRLF) with every cell through :func:`safe_cell`."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n")
    w.writerow({c: safe_cell(str(c)) for c in columns})  # the header too: a column may be named "=..."
    for r in records:
        w.writerow({k: safe_cell(v) for k, v in r.items()})
    return ("\ufeff" if bom else "").encode("utf-8") + buf.getvalue().encode("utf-8")


def xlsx_bytes(records: Iterable[dict], columns: Sequence[str], sheet_name: str = "Sheet1") -> bytes:
    """An .xlsx workbook with one sheet: a header row, then one row per record.

    Strings go through :func:`safe_cell`, lose the control characters Excel forbids and are
    stored as string cells explicitly (never ``data_type 'f'``); numbers stay numbers."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet_name[:31] or "Sheet1")

    def cell(v: Any):
        if v is None or (isinstance(v, float) and v != v):
            return None
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalars
            v = v.item()
        if not isinstance(v, (str, int, float, bool)):
            v = str(v)
        if isinstance(v, str):
            c = WriteOnlyCell(ws, value=None)
            c.value = safe_cell(ILLEGAL_CHARACTERS_RE.sub("", v))
            c.data_type = "s"
            return c
        return v

    ws.append([cell(str(c)) for c in columns])
    for r in records:
        ws.append([cell(r.get(c)) for c in columns])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --------------------------------------------------------------------------- styled workbooks
# Multi-sheet XLSX for reports a person opens (analysis exports, the app's downloads):
# every cell a value (strings through safe_cell, Excel-illegal characters dropped, NaN
# empty), bold frozen header, autofilter, widths fitted to the content (CJK counts double).

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
        return safe_cell(v)
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
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _sheet_title(name: str) -> str:
    bad = '[]:*?/\\'
    return "".join("_" if ch in bad else ch for ch in name)[:31] or "sheet"



