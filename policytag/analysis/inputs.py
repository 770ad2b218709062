"""Tagged rows for the analysis commands, from what a user has at hand.

An input is one of

- a document (``.txt .docx .pdf .html``) or a folder of documents: segmented and tagged
  by the caller's model (``tag_file``; the CLI and the app pass
  :func:`policytag.serving.tagging.document_tagger`);
- a previous ``policytag predict`` output (``.jsonl``, ``.csv``, ``.xlsx``): its rows as they are;
- with ``gold=True``: a seed doc id (``kunshan-2023``), a seed source file or a folder of
  them: the hand-labeled gold clauses of those documents (no model needed).

Each input becomes one :class:`InputSet` (the rows of that argument, in order), so a
command can compare inputs, or documents, or any grouping of them.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from policytag.errors import InputError, PolicytagError
from policytag.text.inputs import expand_inputs

ROW_FILE_SUFFIXES = (".jsonl", ".csv", ".xlsx")
LIST_FIELDS = ("agencies", "themes", "measures")
SEED_META_FILE = Path(__file__).with_name("seed_docs.yaml")


@dataclass
class InputSet:
    """The tagged rows of one command-line input."""

    label: str                      # the input as given (file, folder, doc id)
    rows: list[dict] = field(default_factory=list)
    kind: str = "rows"              # "rows" (predict output), "documents", "gold"

    @property
    def doc_ids(self) -> list[str]:
        return list(dict.fromkeys(r.get("doc_id", "") for r in self.rows))


def check_output(output: str | os.PathLike, inputs: Sequence[str], suffixes: Sequence[str] = (".xlsx",)) -> Path:
    """The output path, refusing one that is an input file or has the wrong extension."""
    out = Path(output)
    if out.suffix.lower() not in suffixes:
        raise InputError(f"output {out}: use a file name ending in {' or '.join(suffixes)}")
    try:
        out_r = out.resolve()
    except OSError:
        out_r = out
    for item in inputs:
        p = Path(item)
        if p.exists() and p.is_file() and p.resolve() == out_r:
            raise InputError(f"output {out} is also an input; choose another output file name "
                             "(inputs are never overwritten)")
        if p.is_dir() and out_r.is_relative_to(p.resolve()) and out.suffix.lower() in ROW_FILE_SUFFIXES \
                and out_r.exists():
            raise InputError(f"output {out} is inside input folder {p} and would be read as an input; "
                             "write it somewhere else")
    return out


# --------------------------------------------------------------------------- gold


def gold_rows(doc_ids: Sequence[str] | None = None, path: str | os.PathLike | None = None) -> list[dict]:
    """Gold clauses (``labels/clauses.jsonl``) as tagged rows, optionally of some doc ids."""
    from policytag import paths
    from policytag.data.dataset import load_gold

    clauses = load_gold(path or paths.GOLD_FILE)
    rows = [c.to_dict() for c in clauses]
    if doc_ids is None:
        return rows
    known = list(dict.fromkeys(r["doc_id"] for r in rows))
    missing = [d for d in doc_ids if d not in known]
    if missing:
        raise InputError(f"--gold: no gold labels for {', '.join(missing)}; gold documents are: {', '.join(known)}")
    want = set(doc_ids)
    return [r for r in rows if r["doc_id"] in want]


def _gold_doc_ids_for(item: str) -> list[str]:
    from policytag.text.ingestion import SUPPORTED_SUFFIXES, doc_id_for

    p = Path(item)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES)
        if not files:
            raise InputError(f"{item}: folder has no documents (.txt .docx .pdf .html)")
        return [doc_id_for(f) for f in files]
    if p.is_file():
        return [doc_id_for(p)]
    return [item]  # a doc id


# --------------------------------------------------------------------------- predict outputs


def read_rows(path: str | os.PathLike) -> list[dict]:
    """Rows of a ``policytag predict`` output (``.jsonl``/``.csv``/``.xlsx``) or a labeled clause file.

    Lists written as ``a;b`` (CSV/XLSX) come back as lists; ``p_*`` columns as floats.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".jsonl":
        from policytag.clause import read_jsonl

        rows = [obj for _, obj in read_jsonl(path)]
    elif ext == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = [dict(r) for r in csv.DictReader(fh)]
    elif ext == ".xlsx":
        import pandas as pd

        try:
            df = pd.read_excel(path, sheet_name=0, dtype=object)
        except Exception as e:  # noqa: BLE001 - any unreadable workbook is a user error
            raise InputError(f"{path}: cannot read as Excel ({type(e).__name__}: {e})") from None
        rows = [{k: (None if _isnan(v) else v) for k, v in r.items()} for r in df.to_dict("records")]
    else:
        raise InputError(f"{path}: unknown row file type {ext}; use .jsonl, .csv or .xlsx")
    if not rows:
        raise InputError(f"{path}: no rows")
    if "text" not in rows[0] or "themes" not in rows[0] or "measures" not in rows[0]:
        raise InputError(f"{path}: needs text, themes and measures columns; give a `policytag predict` output "
                         "(or documents with --model, or seed documents with --gold)")
    return [_normalize_row(r, path, i) for i, r in enumerate(rows, 1)]


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and v != v


def _normalize_row(r: dict, path: Path, i: int) -> dict:
    out = dict(r)
    for k in LIST_FIELDS:
        v = out.get(k)
        if v is None or v == "":
            out[k] = []
        elif isinstance(v, str):
            s = v.strip()
            if s.startswith("["):
                try:
                    out[k] = [str(x) for x in json.loads(s)]
                    continue
                except json.JSONDecodeError:
                    pass
            out[k] = [x.strip() for x in s.split(";") if x.strip()]
        elif isinstance(v, (list, tuple)):
            out[k] = [str(x) for x in v]
        else:
            raise InputError(f"{path}: row {i}: column {k} should be a list or 'a;b' text, got {v!r}")
    for k, v in list(out.items()):
        if k.startswith("p_") and isinstance(v, str) and v:
            try:
                out[k] = float(v)
            except ValueError:
                pass
    if "span" not in out and "span_start" in out:
        a, b = out.pop("span_start", ""), out.pop("span_end", "")
        out["span"] = [int(float(a)), int(float(b))] if a not in ("", None) and b not in ("", None) else None
    out["doc_id"] = str(out.get("doc_id") or path.stem)
    out["clause_id"] = str(out.get("clause_id") or f"{out['doc_id']}#{i}")
    out["text"] = str(out.get("text") or "")
    out["context"] = str(out.get("context") or "")
    return out


# --------------------------------------------------------------------------- all inputs


def load_inputs(inputs: Sequence[str], *, gold: bool = False,
                tag_file: Callable[[Path], list[dict]] | None = None,
                on_skip: Callable[[str, str], None] | None = None) -> list[InputSet]:
    """One :class:`InputSet` per input. Documents are tagged by ``tag_file(path) -> rows`` (the
    caller's model, e.g. :func:`policytag.serving.tagging.document_tagger`); ``gold=True`` reads
    gold labels instead and needs none.

    A document that cannot be read is reported through ``on_skip(path, reason)`` and left out;
    an input that yields no rows at all is an error.
    """
    if not inputs:
        raise InputError("give at least one input (documents, folders, predict outputs, or seed doc ids with --gold)")
    sets: list[InputSet] = []
    for item in inputs:
        p = Path(item)
        if p.is_file() and p.suffix.lower() in ROW_FILE_SUFFIXES:
            sets.append(InputSet(item, read_rows(p), "rows"))
            continue
        if gold:
            sets.append(InputSet(item, gold_rows(_gold_doc_ids_for(item)), "gold"))
            continue
        if not p.exists():
            raise InputError(f"{item}: no such file or folder (a seed doc id needs --gold)")
        if tag_file is None:
            raise InputError(f"{item}: documents need a model to tag them (or give predict outputs, "
                             "or seed doc ids with --gold)")
        sets.append(InputSet(item, tag_paths(tag_file, p, on_skip), "documents"))
    for s in sets:
        if not s.rows:
            raise InputError(f"{s.label}: no clauses to analyse")
    return sets


def tag_paths(tag_file: Callable[[Path], list[dict]], p: Path,
              on_skip: Callable[[str, str], None] | None = None) -> list[dict]:
    """The rows of every readable document under ``p`` (a file or a folder), in order."""
    found, skips = expand_inputs([str(p)], clauses=False)
    for s in skips:
        if on_skip and s.failed:
            on_skip(s.path, s.reason)
    rows: list[dict] = []
    for f in found:
        try:
            rows.extend(tag_file(Path(f.path)))
        except PolicytagError as e:
            if on_skip is None:
                raise
            on_skip(str(f.path), str(e))
    return rows


# --------------------------------------------------------------------------- metadata


def load_metadata(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """Per-document metadata (``year``, ``level``, ``title`` …) keyed by doc id.

    Always includes the seed documents (``seed_docs.yaml``); ``path`` adds or overrides from a
    YAML/JSON mapping ``doc_id: {key: value}`` or a CSV/TSV table with a ``doc_id`` (or
    ``slug``) column, such as the corpus ``INDEX.tsv``.
    """
    meta = {k: dict(v or {}) for k, v in (yaml.safe_load(SEED_META_FILE.read_text(encoding="utf-8")) or {}).items()}
    if path is None:
        return meta
    p = Path(path)
    if not p.exists():
        raise InputError(f"--meta {p}: no such file")
    ext = p.suffix.lower()
    if ext in (".yaml", ".yml", ".json"):
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise InputError(f"--meta {p}: expected a mapping doc_id: {{year: …, level: …}}")
        for k, v in data.items():
            meta.setdefault(str(k), {}).update(v or {})
    elif ext in (".csv", ".tsv"):
        with p.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if ext == ".tsv" else ",")
            for r in reader:
                did = r.get("doc_id") or r.get("slug")
                if not did:
                    raise InputError(f"--meta {p}: needs a doc_id (or slug) column")
                meta.setdefault(did, {}).update({k: v for k, v in r.items() if k not in ("doc_id", "slug") and v})
    else:
        raise InputError(f"--meta {p}: use .yaml, .json, .csv or .tsv")
    return meta
