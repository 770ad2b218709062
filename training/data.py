"""Data helpers the model code needs, delegating to :mod:`policytag.dataset` when it exists.

``policytag.dataset`` (owned by the labels area) is the contract: ``load_gold``,
``load_splits``, ``grouped_folds``, ``data_hash``, ``label_matrix``. Until it is
available, the small fallbacks below implement the same contract so that the model
code and its tests never depend on the order in which areas land.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from policytag import paths
from policytag.clause import Clause, load_clauses
from policytag.errors import InputError, PolicytagError
from policytag.taxonomy import Taxonomy, load_taxonomy


def _dataset():
    try:
        from policytag import dataset  # noqa: PLC0415
    except ImportError:
        return None
    return dataset


def load_gold(path: str | Path | None = None, taxonomy: Taxonomy | None = None) -> list[Clause]:
    """Labeled clauses from ``path`` (default: the shipped ``labels/clauses.jsonl``), ids validated."""
    ds = _dataset()
    path = Path(path) if path else paths.GOLD_FILE
    if ds is not None and hasattr(ds, "load_gold"):
        return ds.load_gold(path, taxonomy=taxonomy)
    if not path.exists():
        raise InputError(
            f"no labeled data at {path}; pass --data FILE (JSON Lines with text, context, themes, measures)"
        )
    tax = taxonomy or load_taxonomy()
    clauses = load_clauses(path)
    for i, c in enumerate(clauses, 1):
        where = f"{path}:{c.clause_id or i}"
        if c.themes is None or c.measures is None:
            raise InputError(f"{where}: clause has no 'themes'/'measures' lists; label it or drop it")
        c.themes = tax.validate(c.themes, "themes", where)
        c.measures = tax.validate(c.measures, "measures", where)
    return clauses


def load_splits() -> dict[str, Any]:
    """``{test_docs, dev_docs, folds}`` from ``labels/splits.yaml``; empty lists when absent."""
    ds = _dataset()
    if ds is not None and hasattr(ds, "load_splits"):
        return ds.load_splits()
    if not paths.SPLITS_FILE.exists():
        return {"test_docs": [], "dev_docs": [], "folds": []}
    import yaml

    with paths.SPLITS_FILE.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    return {"test_docs": list(data.get("test_docs") or []), "dev_docs": list(data.get("dev_docs") or []),
            "folds": list(data.get("folds") or [])}


def grouped_folds(clauses: Sequence[Clause], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Document-grouped k folds: no document has clauses on both sides of a split."""
    ds = _dataset()
    if ds is not None and hasattr(ds, "grouped_folds"):
        return [(np.asarray(a), np.asarray(b)) for a, b in ds.grouped_folds(list(clauses), k)]
    docs = sorted({c.doc_id for c in clauses})
    if k < 2:
        raise PolicytagError(f"need at least 2 folds, got {k}")
    if len(docs) < k:
        raise PolicytagError(
            f"{k}-fold document-grouped CV needs at least {k} documents; the data has {len(docs)}"
        )
    # greedy balance by clause count, largest documents first (deterministic)
    sizes = {d: sum(1 for c in clauses if c.doc_id == d) for d in docs}
    buckets: list[list[str]] = [[] for _ in range(k)]
    loads = [0] * k
    for d in sorted(docs, key=lambda d: (-sizes[d], d)):
        j = int(np.argmin(loads))
        buckets[j].append(d)
        loads[j] += sizes[d]
    doc_ids = np.array([c.doc_id for c in clauses])
    out = []
    for b in buckets:
        test = np.flatnonzero(np.isin(doc_ids, b))
        train = np.flatnonzero(~np.isin(doc_ids, b))
        out.append((train, test))
    return out


def data_hash(clauses: Sequence[Clause]) -> str:
    """sha256 over text, context and labels; independent of clause order."""
    ds = _dataset()
    if ds is not None and hasattr(ds, "data_hash"):
        return ds.data_hash(list(clauses))
    items = sorted(
        json.dumps([c.text, c.context or "", sorted(c.themes or []), sorted(c.measures or [])], ensure_ascii=False)
        for c in clauses
    )
    h = hashlib.sha256()
    for it in items:
        h.update(it.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def label_matrix(clauses: Sequence[Clause], taxonomy: Taxonomy | None = None) -> np.ndarray:
    """0/1 matrix ``[n, len(taxonomy.label_ids)]`` (themes then measures)."""
    ds = _dataset()
    tax = taxonomy or load_taxonomy()
    if ds is not None and hasattr(ds, "label_matrix"):
        return np.asarray(ds.label_matrix(list(clauses), tax), dtype=np.float32)
    index = {lab: j for j, lab in enumerate(tax.label_ids)}
    y = np.zeros((len(clauses), len(index)), dtype=np.float32)
    for i, c in enumerate(clauses):
        for lab in list(c.themes or []) + list(c.measures or []):
            y[i, index[lab]] = 1.0
    return y
