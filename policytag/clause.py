"""The clause record (LABELING.md section 1 and 5) and JSON Lines input/output.

A clause is one sentence of a provision. It is a plain dataclass that serializes to
one JSON object per line; unlabeled clauses simply carry ``themes=None``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Iterator

from policytag.errors import InputError
from policytag.fileio import atomic_write_text  # noqa: F401 - the one atomic writer, re-exported


#: Optional document metadata fields of a clause (set by ``segment`` from ``Document.meta``).
META_FIELDS = ("doc_title", "genre", "level", "year")


@dataclass
class Clause:
    doc_id: str
    clause_id: str
    text: str
    context: str = ""
    provision_id: str = ""
    span: tuple[int, int] | None = None  # [start, end) in the document's clean text
    agencies: list[str] = field(default_factory=list)
    themes: list[str] | None = None
    measures: list[str] | None = None
    source: str | None = None  # "gold", "correction", "prediction", ...
    # document metadata (optional; see ingestion.load_source): copied onto every clause
    doc_title: str = ""
    genre: str = ""
    level: str = ""
    year: int | None = None

    def to_dict(self, labels: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if d["span"] is not None:
            d["span"] = list(d["span"])
        for k in META_FIELDS:  # document metadata only when known (older files stay identical)
            if d[k] in (None, ""):
                d.pop(k)
        if not labels:
            for k in ("themes", "measures", "source"):
                d.pop(k)
        else:
            d = {k: v for k, v in d.items() if not (k == "source" and v is None)}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Clause":
        if not isinstance(d, dict):
            raise InputError(f"expected a JSON object, got {type(d).__name__}")
        if not str(d.get("text") or "").strip():
            raise InputError("clause has empty 'text'")
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw.setdefault("doc_id", "")
        kw.setdefault("clause_id", "")
        if kw.get("span") is not None:
            kw["span"] = tuple(kw["span"])
        kw["agencies"] = list(kw.get("agencies") or [])
        for k in ("doc_title", "genre", "level"):
            if kw.get(k) is None:
                kw.pop(k, None)
        if kw.get("year") not in (None, ""):
            try:
                kw["year"] = int(kw["year"])
            except (TypeError, ValueError):
                kw["year"] = None
        else:
            kw["year"] = None
        return cls(**kw)

    @property
    def labeled(self) -> bool:
        return self.themes is not None and self.measures is not None


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; bad JSON names file and line."""
    path = Path(path)
    with path.open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None


def load_clauses(path: str | os.PathLike) -> list[Clause]:
    out = []
    for lineno, obj in read_jsonl(path):
        try:
            out.append(Clause.from_dict(obj))
        except InputError as e:
            raise InputError(f"{path}:{lineno}: {e}") from None
    return out


def write_jsonl(path: str | os.PathLike, records: Iterable[Clause | dict], labels: bool = True) -> int:
    """Atomically write clauses (or dicts) as JSON Lines; returns the number of lines."""
    lines = []
    for r in records:
        d = r.to_dict(labels=labels) if isinstance(r, Clause) else r
        lines.append(json.dumps(d, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)
