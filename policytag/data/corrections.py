"""The corrections store: every label a user fixes, kept forever in SQLite.

One append-only table holds the full history. A clause is identified by
``clause_key(text)`` (sha256 of the normalized clause text), so the same sentence
corrected from the app, from a spreadsheet or from the command line is one clause.
The latest correction of a clause wins when building training data
(:meth:`CorrectionStore.latest`); earlier ones stay in :meth:`CorrectionStore.history`.
A row's ``status`` says what the reviewer did: NULL or ``corrected`` (labels fixed),
``accepted`` (the model's labels confirmed: a reviewed clause too) or ``junk`` (not a
clause: left out of training data and of the app's counts). Stores written before the
column existed get it added (NULL) when opened.

Concurrency and safety: WAL journal, a busy timeout, one short connection per call and
every write inside ``BEGIN IMMEDIATE ... COMMIT``, so several processes (the app, a
CLI import, a notebook) can write at once without losing a row, and a crash in the
middle of an import applies none of it. UPDATE and DELETE are refused by triggers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from policytag import paths
from policytag.clause import Clause
from policytag.errors import InputError, PolicytagError, UnknownLabelError
from policytag.fileio import atomic_write_bytes, check_not_an_input, csv_bytes, is_formula, unsafe_cell, xlsx_bytes
from policytag.data.records import JUNK, STATUSES
from policytag.data.taxonomy import Taxonomy, load_taxonomy

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    clause_key         TEXT NOT NULL,
    text               TEXT NOT NULL,
    context            TEXT NOT NULL DEFAULT '',
    doc_id             TEXT NOT NULL DEFAULT '',
    clause_id          TEXT NOT NULL DEFAULT '',
    predicted_themes   TEXT,            -- JSON list or NULL
    predicted_measures TEXT,            -- JSON list or NULL
    scores             TEXT,            -- JSON {label: probability} or NULL
    themes             TEXT NOT NULL,   -- JSON list (the corrected labels)
    measures           TEXT NOT NULL,   -- JSON list
    model_version      TEXT,
    annotator          TEXT,
    note               TEXT,
    created_at         TEXT NOT NULL,   -- ISO 8601, UTC, microseconds
    status             TEXT             -- NULL/'corrected', 'accepted' (model was right), 'junk' (not a clause)
);
CREATE INDEX IF NOT EXISTS corrections_key ON corrections (clause_key, id);
CREATE INDEX IF NOT EXISTS corrections_time ON corrections (created_at);
CREATE TRIGGER IF NOT EXISTS corrections_no_update BEFORE UPDATE ON corrections
BEGIN SELECT RAISE(ABORT, 'the corrections table is append-only'); END;
CREATE TRIGGER IF NOT EXISTS corrections_no_delete BEFORE DELETE ON corrections
BEGIN SELECT RAISE(ABORT, 'the corrections table is append-only'); END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLUMNS = (
    "id", "clause_key", "text", "context", "doc_id", "clause_id", "predicted_themes",
    "predicted_measures", "scores", "themes", "measures", "model_version", "annotator",
    "note", "created_at", "status",
)
_JSON_COLUMNS = {"predicted_themes", "predicted_measures", "scores", "themes", "measures"}

_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """The form of a clause used for matching: NFKC (full-width → half-width), no whitespace."""
    return _WS.sub("", unicodedata.normalize("NFKC", str(text or "")))


def clause_key(text: str) -> str:
    """sha256 (hex) of the normalized clause text: the identity of a clause in the store."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _as_utc_iso(value: str | datetime) -> str:
    """Normalize a time given as datetime or ISO string to the stored format (UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise PolicytagError(f"time {value!r} is not ISO 8601 (e.g. 2026-11-23T15:30:00+00:00)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


# --------------------------------------------------------------------------- labels

_SPLIT = re.compile(r"[,，、;；|/\n]+")


def parse_label_cell(value: Any) -> list[str]:
    """Split a label cell into items: a list, or a string separated by , ， 、 ; ； | or newlines.

    ``None``/NaN/"" and "—"/"-" mean no labels.
    """
    if value is None:
        return []
    if isinstance(value, float) and value != value:  # NaN from pandas
        return []
    if isinstance(value, (list, tuple, set)):
        items = [str(v) for v in value]
    else:
        s = str(value).strip()
        if s.startswith("[") and s.endswith("]"):
            try:
                parsed = json.loads(s)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list):
                return parse_label_cell(parsed)
        items = _SPLIT.split(s)
    out = []
    for it in items:
        it = it.strip().strip("\"'").strip()
        if it and it not in {"—", "-", "–", "无", "none", "None"}:
            out.append(it)
    return out


_DISPLAY = re.compile(r"^(?P<zh>.*?)\s*[（(]\s*(?P<id>[A-Za-z_]+)\s*[)）]$")


def resolve_label(item: str, dimension: str, taxonomy: Taxonomy) -> str | None:
    """Map an id, a Chinese name, an English name or a display form ``青少年 (youth)`` to an id."""
    ids = taxonomy.ids(dimension)
    s = item.strip()
    if s in ids:
        return s
    m = _DISPLAY.match(s)
    if m and m.group("id") in ids:
        return m.group("id")
    low = s.lower()
    for i in ids:
        lab = taxonomy[i]
        if s == lab.zh or low == lab.en.lower() or low == i.lower():
            return i
    return None


def normalize_labels(values: Any, dimension: str, taxonomy: Taxonomy | None = None, where: str = "") -> list[str]:
    """Resolve, validate and de-duplicate labels; returned in taxonomy order.

    Raises :class:`UnknownLabelError` naming ``where`` for anything that is not a label of
    ``dimension`` (ids of the other dimension included).
    """
    tax = taxonomy or load_taxonomy()
    found = set()
    for item in parse_label_cell(values):
        lid = resolve_label(item, dimension, tax)
        if lid is None:
            other = next((d for d in ("themes", "measures") if d != dimension), None)
            belongs = other if other and resolve_label(item, other, tax) is not None else None
            raise UnknownLabelError(item, dimension[:-1] if dimension.endswith("s") else dimension,
                                    where, known=tax.ids(dimension), belongs_to=belongs)
        found.add(lid)
    return [i for i in tax.ids(dimension) if i in found]


def _split_predicted(predicted: Any, taxonomy: Taxonomy) -> tuple[list[str] | None, list[str] | None]:
    """Accept a Prediction-like object, a dict with themes/measures, or a flat list of ids."""
    if predicted is None:
        return None, None
    if hasattr(predicted, "themes") and hasattr(predicted, "measures"):
        return list(predicted.themes or []), list(predicted.measures or [])
    if isinstance(predicted, Mapping):
        return list(predicted.get("themes") or []), list(predicted.get("measures") or [])
    ids = parse_label_cell(predicted)
    return [i for i in ids if i in taxonomy.themes], [i for i in ids if i in taxonomy.measures]


def _clause_fields(clause: Clause | Mapping | str) -> dict[str, str]:
    if isinstance(clause, Clause):
        d: dict[str, Any] = {"text": clause.text, "context": clause.context, "doc_id": clause.doc_id,
                             "clause_id": clause.clause_id}
    elif isinstance(clause, Mapping):
        d = {k: clause.get(k) for k in ("text", "context", "doc_id", "clause_id")}
    elif isinstance(clause, str):
        d = {"text": clause}
    else:
        raise TypeError(f"clause must be a Clause, a dict with 'text' or a string, not {type(clause).__name__}")
    out = {k: ("" if d.get(k) is None else str(d.get(k))) for k in ("text", "context", "doc_id", "clause_id")}
    if not out["text"].strip():
        raise InputError("cannot save a correction for an empty clause text")
    return out


def _after(since: str | datetime | None, after_id: int | None) -> tuple[list[str], list[Any]]:
    """SQL conditions (and their arguments) for rows created after ``since`` / ``after_id``."""
    where: list[str] = []
    args: list[Any] = []
    if since is not None:
        where.append("created_at > ?")
        args.append(_as_utc_iso(since))
    if after_id is not None:
        where.append("id > ?")
        args.append(int(after_id))
    return where, args


# --------------------------------------------------------------------------- store

@dataclass
class CorrectionInput:
    """One validated correction waiting to be written (see :meth:`CorrectionStore.add_many`)."""

    text: str
    themes: list[str]
    measures: list[str]
    context: str = ""
    doc_id: str = ""
    clause_id: str = ""
    predicted_themes: list[str] | None = None
    predicted_measures: list[str] | None = None
    scores: dict[str, float] | None = None
    model_version: str | None = None
    annotator: str | None = None
    note: str | None = None
    status: str | None = None   # None (= corrected), "corrected", "accepted", "junk"
    key: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.key = clause_key(self.text)


@dataclass
class WriteResult:
    added: list[int] = field(default_factory=list)       # new row ids
    unchanged: list[int] = field(default_factory=list)   # existing latest row ids (same labels)
    flags: list[bool] = field(default_factory=list)      # per input item, in order: True = written


class CorrectionStore:
    """Append-only store of label corrections (see module docstring)."""

    def __init__(self, path: str | os.PathLike | None = None, taxonomy: Taxonomy | None = None):
        self.path = Path(path) if path is not None else paths.corrections_db()
        self.taxonomy = taxonomy or load_taxonomy()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init_db()

    def __repr__(self) -> str:
        return f"CorrectionStore({str(self.path)!r})"

    # ---- connection handling
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        con.execute("PRAGMA synchronous = FULL")  # a committed correction survives a power cut too
        return con

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: BEGIN IMMEDIATE takes the write lock up front (no upgrade deadlock)."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    def _init_db(self) -> None:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                con = self._connect()
                try:
                    mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        raise PolicytagError(f"{self.path}: cannot switch SQLite to WAL mode (got {mode}); "
                                             "put POLICYTAG_HOME on a local disk")
                    con.execute("BEGIN IMMEDIATE")
                    for stmt in _statements(_SCHEMA):  # executescript() would commit first
                        con.execute(stmt)
                    cols = {r[1] for r in con.execute("PRAGMA table_info(corrections)").fetchall()}
                    if "status" not in cols:  # a store written before review statuses existed
                        con.execute("ALTER TABLE corrections ADD COLUMN status TEXT")
                    con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    con.execute("COMMIT")
                finally:
                    con.close()
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise PolicytagError(f"cannot open the corrections store {self.path}: {e}") from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as e:
                raise PolicytagError(f"{self.path} is not a corrections store ({e}); move it away or set POLICYTAG_HOME") from None

    # ---- writing
    def prepare(self, clause: Clause | Mapping | str, themes: Any, measures: Any, *, predicted: Any = None,
                scores: Mapping[str, float] | None = None, model_version: str | None = None,
                annotator: str | None = None, note: str | None = None, where: str = "",
                status: str | None = None) -> CorrectionInput:
        """Validate one correction without writing it (raises UnknownLabelError / InputError)."""
        if status is not None and status not in STATUSES:
            raise InputError(f"{where}unknown review status {status!r}; use one of {', '.join(STATUSES)}")
        f = _clause_fields(clause)
        pt, pm = _split_predicted(predicted, self.taxonomy)
        return CorrectionInput(
            text=f["text"], context=f["context"], doc_id=f["doc_id"], clause_id=f["clause_id"],
            themes=normalize_labels(themes, "themes", self.taxonomy, where),
            measures=normalize_labels(measures, "measures", self.taxonomy, where),
            predicted_themes=pt, predicted_measures=pm,
            scores={str(k): float(v) for k, v in scores.items()} if scores else None,
            model_version=model_version, annotator=annotator, note=note or None, status=status,
        )

    def add(self, clause: Clause | Mapping | str, themes: Any, measures: Any, *, predicted: Any = None,
            scores: Mapping[str, float] | None = None, model_version: str | None = None,
            annotator: str | None = None, note: str | None = None, status: str | None = None) -> int:
        """Save a correction (``status``: see the module docstring); returns its row id.

        Idempotent: when the latest correction of the same clause already has these labels,
        nothing is written and that row's id is returned.
        ``themes``/``measures`` are lists of ids (or Chinese names, or a "、"/","-separated string);
        an unknown id raises :class:`UnknownLabelError` and nothing is written.
        """
        item = self.prepare(clause, themes, measures, predicted=predicted, scores=scores,
                            model_version=model_version, annotator=annotator, note=note, status=status)
        res = self.add_many([item])
        return (res.added or res.unchanged)[0]

    def add_many(self, items: Sequence[CorrectionInput]) -> WriteResult:
        """Write validated corrections in ONE transaction: all of them or (on a crash) none."""
        res = WriteResult()
        if not items:
            return res
        with self._write() as con:
            for it in items:
                row = con.execute(
                    "SELECT id, themes, measures, status FROM corrections WHERE clause_key = ? ORDER BY id DESC LIMIT 1",
                    (it.key,),
                ).fetchone()
                if (row is not None and json.loads(row["themes"]) == it.themes and json.loads(row["measures"]) == it.measures
                        and (row["status"] == JUNK) == (it.status == JUNK)):
                    res.unchanged.append(int(row["id"]))
                    res.flags.append(False)
                    continue
                cur = con.execute(
                    "INSERT INTO corrections (clause_key, text, context, doc_id, clause_id, predicted_themes, "
                    "predicted_measures, scores, themes, measures, model_version, annotator, note, created_at, status) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (it.key, it.text, it.context, it.doc_id, it.clause_id, _dump(it.predicted_themes),
                     _dump(it.predicted_measures), _dump(it.scores), _dump(it.themes), _dump(it.measures),
                     it.model_version, it.annotator, it.note, utcnow(), it.status),
                )
                row_id = cur.lastrowid
                assert row_id is not None  # set by the INSERT
                res.added.append(int(row_id))
                res.flags.append(True)
        return res

    # ---- reading
    def records(self, *, latest_only: bool = True, since: str | datetime | None = None,
                after_id: int | None = None, contains: str | None = None, limit: int | None = None) -> list[dict]:
        """Rows as dicts (labels decoded), oldest first.

        ``latest_only``: one row per clause (its latest correction). ``since`` (time) and
        ``after_id`` keep rows created after that point; ``contains`` filters on the text.
        """
        where, args = _after(since, after_id)
        if latest_only:
            where.insert(0, "id IN (SELECT MAX(id) FROM corrections GROUP BY clause_key)")
        if contains:
            where.append("instr(text, ?) > 0")
            args.append(contains)
        sql = "SELECT * FROM corrections" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql.replace(' ORDER BY id', ' ORDER BY id DESC')} LIMIT {int(limit)}) ORDER BY id"
        with self._read() as con:
            return [_decode(r) for r in con.execute(sql, args).fetchall()]

    def latest(self) -> list[Clause]:
        """The latest correction of every clause, as labeled clauses with ``source="correction"``.

        Clauses whose latest decision is ``junk`` (not a clause) are left out: they are no training data.
        """
        return [record_to_clause(r) for r in self.records(latest_only=True) if r.get("status") != JUNK]

    def latest_by_key(self) -> dict[str, dict]:
        return {r["clause_key"]: r for r in self.records(latest_only=True)}

    def get(self, clause: Clause | Mapping | str) -> dict | None:
        """The latest correction of a clause (by its text), or None."""
        text = _clause_fields(clause)["text"]
        with self._read() as con:
            row = con.execute("SELECT * FROM corrections WHERE clause_key = ? ORDER BY id DESC LIMIT 1",
                              (clause_key(text),)).fetchone()
        return _decode(row) if row else None

    def history(self, clause_text: str) -> list[dict]:
        """Every correction ever saved for this clause text, oldest first."""
        with self._read() as con:
            rows = con.execute("SELECT * FROM corrections WHERE clause_key = ? ORDER BY id",
                               (clause_key(clause_text),)).fetchall()
        return [_decode(r) for r in rows]

    def count(self, since: str | datetime | None = None, *, after_id: int | None = None,
              distinct: bool = False) -> int:
        """Number of correction rows (``distinct=True``: clauses) created after ``since``/``after_id``."""
        where, args = _after(since, after_id)
        what = "COUNT(DISTINCT clause_key)" if distinct else "COUNT(*)"
        sql = f"SELECT {what} FROM corrections" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self._read() as con:
            return int(con.execute(sql, args).fetchone()[0])

    def max_id(self) -> int:
        """The id of the newest row (0 when empty): a watermark for "corrections since"."""
        with self._read() as con:
            return int(con.execute("SELECT COALESCE(MAX(id), 0) FROM corrections").fetchone()[0])

    def __len__(self) -> int:
        return self.count()


def _statements(script: str) -> list[str]:
    """Split the schema script into statements (triggers contain ';' inside BEGIN ... END)."""
    out, buf = [], []
    for line in script.strip().splitlines():
        buf.append(line)
        joined = "\n".join(buf).strip()
        if joined.endswith(";") and (not joined.upper().startswith("CREATE TRIGGER") or joined.upper().endswith("END;")):
            out.append(joined)
            buf = []
    return out


def _dump(v: Any) -> str | None:
    return None if v is None else json.dumps(v, ensure_ascii=False)


def _decode(row: sqlite3.Row) -> dict:
    d = {k: row[k] for k in row.keys()}
    for k in _JSON_COLUMNS:
        if d.get(k) is not None:
            d[k] = json.loads(d[k])
    return d


def record_to_clause(r: Mapping) -> Clause:
    return Clause(doc_id=r.get("doc_id") or "", clause_id=r.get("clause_id") or "", text=r["text"],
                  context=r.get("context") or "", themes=list(r["themes"]), measures=list(r["measures"]),
                  source="correction")


# --------------------------------------------------------------------------- export / import

EXPORT_COLUMNS = ["id", "created_at", "doc_id", "clause_id", "context", "text", "themes", "measures",
                  "predicted_themes", "predicted_measures", "model_version", "annotator", "note", "status"]
FORMATS = (".jsonl", ".csv", ".xlsx")
ROUNDING_TOLERANCE = 6e-4  # p_* columns carry 4 decimals; thresholds are float32

# Header aliases accepted on import (a spreadsheet someone relabeled by hand).
_ALIASES = {
    "主题": "themes", "主题标签": "themes", "对象": "themes", "theme": "themes",
    "措施类型": "measures", "措施": "measures", "政策工具": "measures", "measure": "measures",
    "条款": "text", "文本": "text", "clause": "text", "上下文": "context", "标题路径": "context",
    "文档": "doc_id", "条款编号": "clause_id", "备注": "note", "模型版本": "model_version",
}


def _check_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: unsupported format {suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    return suffix


def export_corrections(store: CorrectionStore, path: str | os.PathLike, *, latest_only: bool = True) -> int:
    """Write corrections to .jsonl / .csv / .xlsx (atomic); returns the number of rows.

    In CSV/XLSX label lists are written as ``id, id``; the file imports back unchanged.
    """
    path = Path(path)
    suffix = _check_format(path)
    # the store itself is the input: never write an export over it (or its WAL files)
    check_not_an_input(path, [store.path, Path(f"{store.path}-wal"), Path(f"{store.path}-shm")], what="export file")
    recs = store.records(latest_only=latest_only)
    rows: list[dict[str, Any]] = [{k: r.get(k) for k in EXPORT_COLUMNS} for r in recs]
    if suffix == ".jsonl":
        from policytag.clause import write_jsonl

        return write_jsonl(path, rows)
    flat = []
    for r in rows:
        r = dict(r)
        for k in ("themes", "measures", "predicted_themes", "predicted_measures"):
            r[k] = "" if r[k] is None else ", ".join(r[k])
        flat.append(r)
    # texts and notes starting with = + - @ get a leading ' (never a live formula); import strips it
    if suffix == ".csv":
        atomic_write_bytes(path, csv_bytes(flat, EXPORT_COLUMNS))
    else:
        atomic_write_bytes(path, xlsx_bytes(flat, EXPORT_COLUMNS, sheet_name="corrections"))
    return len(rows)


@dataclass
class ImportReport:
    path: str
    rows: int = 0                                              # data rows read (blank rows not counted)
    accepted: list[int] = field(default_factory=list)          # row numbers written as new corrections
    already_saved: list[int] = field(default_factory=list)     # same labels as the latest stored correction
    unchanged: list[int] = field(default_factory=list)         # labels equal the model's prediction: skipped
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    ids: list[int] = field(default_factory=list)               # new row ids in the store
    dry_run: bool = False
    applied: bool = False                                      # False with --strict and a rejected row, or dry run

    @property
    def ok(self) -> bool:
        return not self.rejected

    def summary(self) -> str:
        verb = "would be written" if self.dry_run else ("written" if self.applied else "NOT written")
        lines = [
            f"{self.path}: {self.rows} rows",
            f"  accepted: {len(self.accepted)} ({verb} as corrections)",
            f"  unchanged (same as the prediction, skipped): {len(self.unchanged)}",
            f"  already saved (same as the latest correction): {len(self.already_saved)}",
            f"  rejected: {len(self.rejected)}",
        ]
        for row, reason in self.rejected:
            lines.append(f"    row {row}: {reason}")
        return "\n".join(lines)


ThresholdSource = Mapping[str, float] | Any  # a {label: threshold} map or a callable(model_version) -> map | None


class FormulaCell(str):
    """A spreadsheet cell that holds a formula (``=...``), not a value: an import rejects its row."""


def read_table(path: str | os.PathLike, errors: list[tuple[int, str]] | None = None) -> list[tuple[int, dict]]:
    """Rows of a .jsonl/.csv/.xlsx file as (row number as the user sees it, dict).

    Row numbers are spreadsheet rows (header = row 1) for CSV/XLSX and line numbers for JSONL.
    With ``errors`` (a list), a JSONL line that is not a JSON object is reported there as
    ``(line, reason)`` and the other lines are still read; without it, it raises.
    Spreadsheet cells holding a formula come back as :class:`FormulaCell`; the ``'`` that
    exports put before a text starting with ``= + - @`` is removed.
    """
    path = Path(path)
    suffix = _check_format(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if suffix == ".jsonl":
        return _read_jsonl_rows(path, errors)
    if suffix == ".xlsx":
        return _read_xlsx_rows(path)
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as e:  # corrupted file, wrong encoding
        raise InputError(f"{path}: cannot read as CSV ({_one_line(e)})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return [(i + 2, {k: _cell_value(v) for k, v in rec.items()})
            for i, rec in enumerate(df.to_dict(orient="records"))]


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


def _cell_value(v: Any) -> Any:
    if v is None:
        return ""
    if is_formula(v):
        return FormulaCell(v)
    return unsafe_cell(v)


def _read_jsonl_rows(path: Path, errors: list[tuple[int, str]] | None) -> list[tuple[int, dict]]:
    out: list[tuple[int, dict]] = []
    try:
        with path.open(encoding="utf-8-sig") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    reason = None if isinstance(obj, dict) else "expected a JSON object per line"
                except json.JSONDecodeError as e:
                    obj, reason = None, f"not valid JSON ({e.msg} at column {e.colno})"
                if reason is None:
                    out.append((lineno, obj))
                elif errors is None:
                    raise InputError(f"{path}:{lineno}: {reason}")
                else:
                    errors.append((lineno, reason))
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte offset {e.start}); a corrections .jsonl file must be "
                         "UTF-8") from None
    return out


def _read_xlsx_rows(path: Path) -> list[tuple[int, dict]]:
    """Rows of the first sheet, read with openpyxl so that a formula is seen as one (pandas
    would give its cached value: nothing, for a file written by a program)."""
    try:
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=False)
    except Exception as e:  # corrupted file, not a workbook
        raise InputError(f"{path}: cannot read as XLSX ({_one_line(e)})") from None
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(min_row=1)
        header: list[str] | None = None
        out: list[tuple[int, dict]] = []
        for rownum, cells in enumerate(rows, 1):
            values: list[Any] = []
            for c in cells:
                v = getattr(c, "value", None)
                if getattr(c, "data_type", None) == "f":
                    values.append(FormulaCell(v if isinstance(v, str) else f"={getattr(v, 'text', '') or v}"))
                elif v is None:
                    values.append("")
                else:
                    values.append(_cell_value(v if isinstance(v, str) else str(v)))
            if header is None:
                header = []
                seen: dict[str, int] = {}
                for i, v in enumerate(values):
                    name = str(v).strip() or f"Unnamed: {i}"
                    if name in seen:
                        seen[name] += 1
                        name = f"{name}.{seen[name]}"
                    else:
                        seen[name] = 0
                    header.append(name)
                continue
            rec = {name: (values[i] if i < len(values) else "") for i, name in enumerate(header)}
            out.append((rownum, rec))
        return out
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged sheet
        raise InputError(f"{path}: cannot read as XLSX ({_one_line(e)})") from None
    finally:
        wb.close()


def _canonical(row: dict) -> dict:
    out: dict[str, Any] = {}
    for k, v in row.items():
        key = str(k).strip()
        key = _ALIASES.get(key, _ALIASES.get(key.lower(), key))
        out.setdefault(key, v)
    return out


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip())


def _row_scores(row: dict, label_ids: list[str]) -> dict[str, float] | None:
    scores: dict[str, float] = {}
    for lid in label_ids:
        v: Any = row.get(f"p_{lid}")
        if _blank(v):
            continue
        try:
            scores[lid] = float(v)
        except (TypeError, ValueError):
            continue
    return scores or None


def _check_columns(path: Path, table: list[tuple[int, dict]]) -> None:
    cols = set().union(*(_canonical(r).keys() for _, r in table))
    missing = [c for c in ("text", "themes", "measures") if c not in cols]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; a corrections file needs "
                         "text, themes and measures (e.g. the output of `policytag predict -o x.xlsx`)")


def _model_prediction(row: dict, scores: dict[str, float] | None, version: str | None, themes: list[str],
                      measures: list[str], tax: Taxonomy, thresholds: ThresholdSource | None, all_rows: bool,
                      unresolved: set[str]) -> tuple[list[str] | None, list[str] | None]:
    """The model's (themes, measures) for a row: its ``predicted_*`` columns, or its ``p_*``
    scores against the model's thresholds; ``(None, None)`` when unknown (a model version whose
    thresholds are missing is added to ``unresolved``)."""
    pt = pm = None
    if not _blank(row.get("predicted_themes")) or not _blank(row.get("predicted_measures")):
        try:
            pt = normalize_labels(row.get("predicted_themes"), "themes", tax)
            pm = normalize_labels(row.get("predicted_measures"), "measures", tax)
        except UnknownLabelError:
            pt = pm = None
    elif scores is not None and not all_rows:
        th = thresholds(version) if callable(thresholds) else thresholds
        if th is None:
            unresolved.add(version or "(no model_version column)")
        else:
            # p_* columns are rounded (4 decimals): a score within rounding distance of its
            # threshold may have gone either way, so there the row's own label is taken as predicted
            given = set(themes) | set(measures)
            pred = set()
            for lid, p in scores.items():
                t = float(th.get(lid, 0.5))
                if abs(p - t) <= ROUNDING_TOLERANCE:
                    if lid in given:
                        pred.add(lid)
                elif p >= t:
                    pred.add(lid)
            pt = [i for i in tax.themes if i in pred]
            pm = [i for i in tax.measures if i in pred]
    return pt, pm


def import_corrections(store: CorrectionStore, path: str | os.PathLike, *, annotator: str | None = None,
                       thresholds: ThresholdSource | None = None, all_rows: bool = False,
                       strict: bool = False, dry_run: bool = False, note: str | None = None) -> ImportReport:
    """Import a corrected spreadsheet / JSONL (the ``predict -o x.xlsx`` round trip).

    Every row is validated first. Rows with an empty text or an unknown label are rejected
    and reported with their row number; the other rows are written in ONE transaction (so a
    crash applies none of them). With ``strict=True`` a single rejected row means nothing is
    written. A row whose labels equal the model's prediction is skipped as unchanged; the
    prediction is read from ``predicted_themes``/``predicted_measures`` columns, or rebuilt
    from the ``p_<label>`` columns and the thresholds of the model that produced them
    (``thresholds``: a map, or a callable ``model_version -> map | None``). ``all_rows=True``
    imports every row as a correction.
    """
    path = Path(path)
    tax = store.taxonomy
    bad_lines: list[tuple[int, str]] = []
    table = read_table(path, errors=bad_lines)
    report = ImportReport(path=str(path), dry_run=dry_run)
    report.rows += len(bad_lines)
    report.rejected.extend(bad_lines)
    if table:
        _check_columns(path, table)
    items: list[tuple[int, CorrectionInput]] = []
    unresolved: set[str] = set()
    for rownum, raw in table:
        row = _canonical(raw)
        if all(_blank(v) for v in row.values()):
            continue
        report.rows += 1
        formulas = [k for k, v in row.items() if isinstance(v, FormulaCell)]
        if formulas:
            report.rejected.append((rownum, f"column {formulas[0]} holds a formula ({str(row[formulas[0]])[:40]}), "
                                            "not a value; type the value (or paste as values) and import again"))
            continue
        text = row.get("text")
        if _blank(text):
            report.rejected.append((rownum, "empty text"))
            continue
        try:
            themes = normalize_labels(row.get("themes"), "themes", tax)
            measures = normalize_labels(row.get("measures"), "measures", tax)
        except UnknownLabelError as e:
            report.rejected.append((rownum, e.reason))
            continue
        version = None if _blank(row.get("model_version")) else str(row.get("model_version"))
        scores = _row_scores(row, tax.label_ids)
        pt, pm = _model_prediction(row, scores, version, themes, measures, tax, thresholds, all_rows, unresolved)
        if pt is not None and not all_rows and pt == themes and pm == measures:
            report.unchanged.append(rownum)
            continue
        ctx = {k: ("" if _blank(row.get(k)) else str(row.get(k))) for k in ("context", "doc_id", "clause_id")}
        item = CorrectionInput(
            text=str(text).strip(), themes=themes, measures=measures, predicted_themes=pt,
            predicted_measures=pm, scores=scores, model_version=version,
            annotator=annotator or (None if _blank(row.get("annotator")) else str(row.get("annotator"))),
            note=note or (None if _blank(row.get("note")) else str(row.get("note"))), **ctx,
        )
        items.append((rownum, item))
    report.rejected.sort(key=lambda r: r[0])  # bad JSONL lines were reported first
    if unresolved:
        raise InputError(
            f"{path}: the rows carry model scores (p_* columns) but the thresholds of model version(s) "
            f"{', '.join(sorted(unresolved))} are unknown, so unchanged rows cannot be told from corrections. "
            "Pass --model DIR (the model that made the predictions), or --all-rows to import every row "
            "as a correction. Nothing was written.")
    if dry_run or (strict and report.rejected):
        report.accepted = [r for r, _ in items]
        return report
    # Already-saved rows are decided inside the write transaction (another writer may be active).
    res = store.add_many([it for _, it in items])
    report.applied = True
    report.ids = list(res.added)
    for (rownum, _), was_added in zip(items, res.flags):
        (report.accepted if was_added else report.already_saved).append(rownum)
    return report
