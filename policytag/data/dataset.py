"""The gold clause data set (``labels/clauses.jsonl``) and its tooling.

- :func:`load_gold` reads labeled clauses and validates every label id against the
  taxonomy; an error names ``file:line`` and the offending id.
- :func:`check_file` collects *all* problems of a file (the ``labels validate`` command).
- :func:`load_splits`, :func:`split_clauses`, :func:`grouped_folds`: document-grouped
  splits, so that no document sits on both sides of an evaluation.
- :func:`data_hash` identifies a training set independently of its order.
- :func:`label_matrix`, :func:`label_counts`, :func:`doc_stats`, :func:`cooccurrence`:
  arrays and statistics.
- :func:`agreement`: Cohen's kappa and micro-F1 between two labeling passes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import yaml

from policytag import paths
from policytag.clause import Clause
from policytag.errors import InputError, PolicytagError, UnknownLabelError
from policytag.data.taxonomy import DIMENSIONS, Taxonomy, load_taxonomy

NO_THEME = "(no theme)"


# --------------------------------------------------------------------------- validation


@dataclass
class Issue:
    """One problem found in a data file."""

    path: str
    line: int
    clause_id: str
    message: str
    label_id: str | None = None
    dimension: str | None = None
    known: list[str] | None = None

    @property
    def where(self) -> str:
        cid = f" ({self.clause_id})" if self.clause_id else ""
        return f"{self.path}:{self.line}{cid}"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_error(self) -> PolicytagError:
        if self.label_id is not None and self.dimension is not None:
            exc = UnknownLabelError(self.label_id, self.dimension, self.where, self.known)
            exc.args = (str(self),)  # keeps the hint (e.g. "'funding' is a measure id")
            return exc
        return InputError(str(self))


@dataclass
class CheckResult:
    path: str
    clauses: list[Clause] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _resolve_taxonomy(taxonomy: Taxonomy | str | os.PathLike | None) -> Taxonomy:
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    return load_taxonomy(taxonomy)


def _check_labels(val: Any, dim: str, taxonomy: Taxonomy, require_labels: bool,
                  err: Callable[..., None]) -> bool:
    """Check one label list (``themes`` or ``measures``); False when it has an error."""
    ok = True
    if val is None:
        if require_labels:
            err(f"missing {dim!r} (a list of ids, [] when none applies)")
            ok = False
        return ok
    if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
        err(f"{dim!r} must be a list of label ids, got {val!r}")
        return False
    allowed = set(taxonomy.ids(dim))
    for v in val:
        if v not in allowed:
            known = taxonomy.ids(dim)
            other = "themes" if dim == "measures" else "measures"
            hint = f" ({v!r} is a {other[:-1]} id)" if v in set(taxonomy.ids(other)) else ""
            err(f"unknown {dim[:-1]} id {v!r}{hint}; known: {', '.join(known)}",
                label_id=v, dimension=dim, known=known)
            ok = False
    dups = [k for k, n in Counter(val).items() if n > 1]
    if dups:
        err(f"{dim!r} lists {', '.join(dups)} more than once")
        ok = False
    return ok


def check_records(
    records: Iterable[tuple[int, dict[str, Any]]],
    path: str,
    taxonomy: Taxonomy,
    *,
    require_labels: bool = True,
    require_source: str | None = None,
) -> CheckResult:
    """Validate (line number, object) pairs; collect every problem instead of stopping."""
    res = CheckResult(path=path)
    seen_ids: dict[str, int] = {}
    seen_text: dict[tuple[str, str], int] = {}
    for lineno, obj in records:
        cid = str(obj.get("clause_id") or "") if isinstance(obj, dict) else ""

        def err(msg: str, **kw: Any) -> None:
            res.errors.append(Issue(path, lineno, cid, msg, **kw))

        def warn(msg: str) -> None:
            res.warnings.append(Issue(path, lineno, cid, msg))

        if not isinstance(obj, dict):
            err(f"expected a JSON object, got {type(obj).__name__}")
            continue
        bad = False
        for key in ("doc_id", "clause_id"):
            if not str(obj.get(key) or "").strip():
                err(f"missing {key!r}")
                bad = True
        if not str(obj.get("text") or "").strip():
            err("empty or missing 'text'")
            bad = True
        if "context" in obj and not isinstance(obj["context"], str):
            err("'context' must be a string (the heading path, '' if none)")
            bad = True
        for dim in DIMENSIONS:
            if not _check_labels(obj.get(dim), dim, taxonomy, require_labels, err):
                bad = True
        if require_labels and obj.get("themes") is not None and obj.get("measures") is not None:
            if require_source is not None and obj.get("source") != require_source:
                err(f"'source' must be {require_source!r} in this file, got {obj.get('source')!r}")
                bad = True
        if cid:
            if cid in seen_ids:
                err(f"clause_id {cid!r} already used on line {seen_ids[cid]}")
                bad = True
            else:
                seen_ids[cid] = lineno
            doc = str(obj.get("doc_id") or "")
            if doc and not cid.startswith(doc):
                warn(f"clause_id {cid!r} does not start with its doc_id {doc!r}")
        text_key = (str(obj.get("doc_id") or ""), str(obj.get("text") or "").strip())
        if text_key[1]:
            if text_key in seen_text:
                warn(f"same text as line {seen_text[text_key]} of the same document")
            else:
                seen_text[text_key] = lineno
        if bad:
            continue
        try:
            res.clauses.append(Clause.from_dict(obj))
        except (InputError, TypeError) as e:
            err(str(e))
    return res


def check_file(
    path: str | os.PathLike,
    taxonomy: Taxonomy | str | os.PathLike | None = None,
    *,
    require_labels: bool = True,
    require_source: str | None = None,
) -> CheckResult:
    """Validate a JSON Lines clause file and return every problem found (never raises for content)."""
    path = Path(path)
    tax = _resolve_taxonomy(taxonomy)
    if not path.exists():
        res = CheckResult(path=str(path))
        res.errors.append(Issue(str(path), 0, "", "file not found"))
        return res
    records: list[tuple[int, Any]] = []
    bad_json: list[Issue] = []
    with path.open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append((lineno, json.loads(line)))
            except json.JSONDecodeError as e:
                bad_json.append(Issue(str(path), lineno, "", f"not valid JSON ({e.msg})"))
    res = check_records(records, str(path), tax, require_labels=require_labels,
                        require_source=require_source)
    res.errors = sorted(bad_json + res.errors, key=lambda i: i.line)
    if not records and not bad_json:
        res.errors.append(Issue(str(path), 0, "", "file contains no clauses"))
    return res


def load_gold(
    path: str | os.PathLike | None = None,
    taxonomy: Taxonomy | str | os.PathLike | None = None,
) -> list[Clause]:
    """Load labeled clauses, validating every label id against the taxonomy.

    Raises :class:`UnknownLabelError` (``file:line (clause_id): unknown ... id 'x'``) for an
    id the taxonomy does not define and :class:`InputError` for any other problem; the
    message also says how many further problems the file has.
    """
    path = Path(path) if path is not None else paths.GOLD_FILE
    if not path.exists():
        raise InputError(f"{path}: labeled clause file not found")
    res = check_file(path, taxonomy)
    if res.errors:
        first = res.errors[0]
        exc = first.to_error()
        more = len(res.errors) - 1
        if more:
            exc.args = (f"{exc.args[0]} (and {more} more problem(s); run `policytag labels validate {path}`)",)
        raise exc
    return res.clauses


# --------------------------------------------------------------------------- splits


def load_splits(path: str | os.PathLike | None = None) -> dict:
    """Read ``labels/splits.yaml``: ``{"test_docs": [...], "dev_docs": [...], "folds": [[doc ids], ...]}``."""
    path = Path(path) if path is not None else paths.SPLITS_FILE
    if not path.exists():
        raise InputError(f"{path}: splits file not found")
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with test_docs, dev_docs and folds")
    out = dict(data)
    for key in ("test_docs", "dev_docs"):
        val = data.get(key) or []
        if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
            raise InputError(f"{path}: {key!r} must be a list of doc ids")
        out[key] = list(val)
    folds = data.get("folds") or []
    if not isinstance(folds, list) or not all(isinstance(f, list) for f in folds):
        raise InputError(f"{path}: 'folds' must be a list of lists of doc ids")
    out["folds"] = [list(map(str, f)) for f in folds]
    both = set(out["test_docs"]) & set(out["dev_docs"])
    if both:
        raise InputError(f"{path}: document(s) {', '.join(sorted(both))} are in both test_docs and dev_docs")
    flat = [d for f in out["folds"] for d in f]
    dup = sorted(d for d, n in Counter(flat).items() if n > 1)
    if dup:
        raise InputError(f"{path}: document(s) {', '.join(dup)} appear in more than one fold")
    return out


def group_key(c: Clause) -> str:
    """The group a clause belongs to for splitting: its document (or itself if it has none)."""
    return c.doc_id or c.clause_id or c.text


def split_clauses(clauses: Sequence[Clause], splits: dict | None = None) -> dict[str, list[Clause]]:
    """Partition clauses into ``train`` / ``dev`` / ``test`` by document using the fixed split."""
    splits = splits if splits is not None else load_splits()
    test, dev = set(splits.get("test_docs", [])), set(splits.get("dev_docs", []))
    out: dict[str, list[Clause]] = {"train": [], "dev": [], "test": []}
    for c in clauses:
        g = group_key(c)
        out["test" if g in test else "dev" if g in dev else "train"].append(c)
    return out


def grouped_folds(clauses: Sequence[Clause], k: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """Document-grouped k-fold: ``[(train_idx, test_idx), ...]``, ``k`` folds.

    All clauses of one document fall in the same fold. Documents are assigned, largest
    first, to the fold with the fewest clauses so far (ties: lowest fold number), so the
    result is deterministic and folds are balanced. With ``k`` equal to the number of
    documents this is leave-one-document-out.
    """
    if k < 2:
        raise PolicytagError(f"k-fold needs k >= 2, got {k}")
    sizes = Counter(group_key(c) for c in clauses)
    if len(sizes) < k:
        raise PolicytagError(
            f"cannot make {k} document-grouped folds from {len(sizes)} document(s); use k <= {len(sizes)}"
        )
    fold_of: dict[str, int] = {}
    load = [0] * k
    for g, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        f = min(range(k), key=lambda i: (load[i], i))
        fold_of[g] = f
        load[f] += n
    groups = np.array([fold_of[group_key(c)] for c in clauses], dtype=int)
    idx = np.arange(len(clauses))
    return [(idx[groups != f], idx[groups == f]) for f in range(k)]


def fold_docs(clauses: Sequence[Clause], k: int = 5) -> list[list[str]]:
    """The documents of each held-out fold of :func:`grouped_folds` (for reports and splits.yaml)."""
    out = []
    for _, test_idx in grouped_folds(clauses, k):
        out.append(sorted({group_key(clauses[i]) for i in test_idx}))
    return out


# --------------------------------------------------------------------------- hashing, arrays


def _canonical(c: Clause) -> str:
    return json.dumps(
        [c.text, c.context or "", sorted(c.themes or []), sorted(c.measures or [])],
        ensure_ascii=False, separators=(",", ":"),
    )


def data_hash(clauses: Iterable[Clause]) -> str:
    """sha256 over text + context + labels of every clause, independent of their order."""
    h = hashlib.sha256()
    for line in sorted(_canonical(c) for c in clauses):
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def label_matrix(clauses: Sequence[Clause], taxonomy: Taxonomy | None = None,
                 dtype: Any = np.float32) -> np.ndarray:
    """0/1 matrix ``[n_clauses, len(taxonomy.label_ids)]`` (themes then measures)."""
    tax = _resolve_taxonomy(taxonomy)
    col = {lid: j for j, lid in enumerate(tax.label_ids)}
    y = np.zeros((len(clauses), len(col)), dtype=dtype)
    for i, c in enumerate(clauses):
        if not c.labeled:
            raise InputError(f"clause {c.clause_id or i} has no labels; label_matrix needs labeled clauses")
        for dim in DIMENSIONS:
            for lid in getattr(c, dim):
                if lid not in col or tax[lid].dimension != dim:
                    raise UnknownLabelError(lid, dim, c.clause_id, tax.ids(dim))
                y[i, col[lid]] = 1
    return y


# --------------------------------------------------------------------------- statistics


def label_counts(clauses: Iterable[Clause], taxonomy: Taxonomy | None = None) -> dict[str, int]:
    """Number of clauses carrying each label id (taxonomy order, zeros included)."""
    tax = _resolve_taxonomy(taxonomy)
    cnt: Counter[str] = Counter()
    for c in clauses:
        cnt.update(c.themes or [])
        cnt.update(c.measures or [])
    return {lid: cnt.get(lid, 0) for lid in tax.label_ids}


def doc_stats(clauses: Iterable[Clause], taxonomy: Taxonomy | None = None) -> dict[str, dict[str, int]]:
    """Per document: clause count, clauses without theme / measure, and counts per label."""
    tax = _resolve_taxonomy(taxonomy)
    by_doc: dict[str, list[Clause]] = defaultdict(list)
    for c in clauses:
        by_doc[c.doc_id].append(c)
    out = {}
    for doc in sorted(by_doc):
        cs = by_doc[doc]
        row = {
            "clauses": len(cs),
            "no_theme": sum(1 for c in cs if not c.themes),
            "no_measure": sum(1 for c in cs if not c.measures),
        }
        row.update(label_counts(cs, tax))
        out[doc] = row
    return out


def cooccurrence(clauses: Iterable[Clause], taxonomy: Taxonomy | None = None,
                 include_no_theme: bool = True):
    """Theme × measure co-occurrence counts as a pandas DataFrame (ids as index/columns).

    Cell (t, m) counts clauses labeled with both t and m; the ``(no theme)`` row counts
    clauses with measure m and no theme.
    """
    import pandas as pd

    tax = _resolve_taxonomy(taxonomy)
    rows = list(tax.themes) + ([NO_THEME] if include_no_theme else [])
    df = pd.DataFrame(0, index=rows, columns=list(tax.measures), dtype=int)
    for c in clauses:
        themes = c.themes or ([NO_THEME] if include_no_theme else [])
        for t in themes:
            for m in c.measures or []:
                df.loc[t, m] += 1
    return df


def rare_labels(clauses: Iterable[Clause], taxonomy: Taxonomy | None = None,
                minimum: int = 15) -> dict[str, int]:
    """Labels with fewer than ``minimum`` examples (known gaps for the data card)."""
    return {k: v for k, v in label_counts(clauses, taxonomy).items() if v < minimum}


# --------------------------------------------------------------------------- agreement


def cohen_kappa(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> float:
    """Cohen's kappa of two binary annotations; NaN when chance agreement is 1 (label never/always used by both)."""
    xa = np.asarray(a, dtype=int)
    xb = np.asarray(b, dtype=int)
    n = len(xa)
    if n == 0:
        return float("nan")
    po = float(np.mean(xa == xb))
    pa, pb = xa.mean(), xb.mean()
    pe = float(pa * pb + (1 - pa) * (1 - pb))
    if math.isclose(pe, 1.0):
        return float("nan")
    return (po - pe) / (1 - pe)


def _micro_f1(y1: np.ndarray, y2: np.ndarray) -> float:
    tp = float(np.sum((y1 == 1) & (y2 == 1)))
    fp = float(np.sum((y1 == 0) & (y2 == 1)))
    fn = float(np.sum((y1 == 1) & (y2 == 0)))
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def pair_passes(first: Sequence[Clause], second: Sequence[Clause]) -> list[tuple[Clause, Clause]]:
    """Pair the clauses of two passes by clause_id (the second pass may be a sample)."""
    by_id = {c.clause_id: c for c in first}
    pairs, missing = [], []
    for c in second:
        if c.clause_id in by_id:
            pairs.append((by_id[c.clause_id], c))
        else:
            missing.append(c.clause_id)
    if missing:
        raise InputError(
            f"{len(missing)} clause(s) of the second pass are not in the first, e.g. {missing[0]!r}"
        )
    return pairs


def agreement(first: Sequence[Clause], second: Sequence[Clause],
              taxonomy: Taxonomy | None = None) -> dict[str, Any]:
    """Inter-annotator agreement between two labeling passes, per dimension.

    Returns ``{"n": pairs, "themes": {...}, "measures": {...}}`` where each dimension has
    ``kappa_mean`` (mean of per-label Cohen's kappa over labels where it is defined, None if none),
    ``kappa`` (per label; None where undefined), ``micro_f1`` (pass 2 against pass 1),
    ``exact`` (share of clauses with identical label sets), and ``support`` (per label:
    positives in pass 1 / pass 2).
    """
    tax = _resolve_taxonomy(taxonomy)
    pairs = pair_passes(first, second)
    out: dict[str, Any] = {"n": len(pairs)}
    for dim in DIMENSIONS:
        ids = tax.ids(dim)
        y1 = np.array([[int(l in (getattr(a, dim) or [])) for l in ids] for a, _ in pairs], dtype=int).reshape(-1, len(ids))
        y2 = np.array([[int(l in (getattr(b, dim) or [])) for l in ids] for _, b in pairs], dtype=int).reshape(-1, len(ids))
        kappas = {l: cohen_kappa(y1[:, j], y2[:, j]) for j, l in enumerate(ids)}
        defined = [v for v in kappas.values() if not math.isnan(v)]
        out[dim] = {
            "kappa_mean": float(np.mean(defined)) if defined else None,
            "kappa": {l: (None if math.isnan(v) else round(v, 4)) for l, v in kappas.items()},
            "micro_f1": _micro_f1(y1, y2),
            "exact": float(np.mean(np.all(y1 == y2, axis=1))) if len(pairs) else None,
            "support": {l: [int(y1[:, j].sum()), int(y2[:, j].sum())] for j, l in enumerate(ids)},
        }
    return out


def disagreements(first: Sequence[Clause], second: Sequence[Clause]) -> list[dict[str, Any]]:
    """Clauses whose label sets differ between the passes, with both label sets."""
    out = []
    for a, b in pair_passes(first, second):
        diff = {}
        for dim in DIMENSIONS:
            s1, s2 = set(getattr(a, dim) or []), set(getattr(b, dim) or [])
            if s1 != s2:
                diff[dim] = {"pass1": sorted(s1), "pass2": sorted(s2)}
        if diff:
            out.append({"clause_id": a.clause_id, "context": a.context, "text": a.text, **diff})
    return out


# --------------------------------------------------------------------------- genres

_GENRE_FAMILIES: dict[str, str] | None = None


def genre_families() -> dict[str, str]:
    """genre code -> family (``plan``, ``regulation``, ``rule``, ``activity``, ``news``) from labels/genres.yaml."""
    global _GENRE_FAMILIES
    if _GENRE_FAMILIES is None:
        data = yaml.safe_load(paths.GENRES_FILE.read_text(encoding="utf-8")) if paths.GENRES_FILE.exists() else {}
        _GENRE_FAMILIES = {g: fam for fam, body in (data or {}).get("families", {}).items()
                           for g in body.get("genres", [])}
    return _GENRE_FAMILIES


def genre_family(genre: str | None) -> str:
    return genre_families().get(genre or "", "other")


def stratified_test_docs(clauses: Sequence[Clause], share: float = 0.2, seed: int = 0) -> list[str]:
    """About ``share`` of the documents, drawn per (genre family, level) stratum so that every
    stratum with ≥ 2 documents contributes its share (rounded, at least one from strata of ≥ 3)."""
    import random

    docs: dict[str, tuple[str, str]] = {}
    for c in clauses:
        docs.setdefault(c.doc_id, (genre_family(c.genre), c.level or "unknown"))
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for d, key in sorted(docs.items()):
        strata[key].append(d)
    rng = random.Random(seed)
    out: list[str] = []
    for key in sorted(strata):
        members = strata[key]
        k = round(share * len(members))
        if k == 0 and len(members) >= 3:
            k = 1
        out.extend(rng.sample(members, k))
    return sorted(out)


def make_splits(clauses: Sequence[Clause], test_share: float = 0.2, k: int = 10, seed: int = 0) -> dict:
    """The fixed test documents (stratified by genre family and level) and the document-grouped
    ``k`` folds over the other documents (as :func:`grouped_folds` computes them)."""
    test = stratified_test_docs(clauses, test_share, seed)
    rest = [c for c in clauses if c.doc_id not in set(test)]
    return {"version": 2, "test_docs": test, "dev_docs": [], "folds": fold_docs(rest, k),
            "seed": seed, "test_share": test_share}


def splits_yaml(splits: dict, clauses: Sequence[Clause]) -> str:
    """splits.yaml text with a header saying how it was made and what the test set holds."""
    test = set(splits["test_docs"])
    n_test = sum(1 for c in clauses if c.doc_id in test)
    fam = Counter(genre_family(c.genre) for c in {c.doc_id: c for c in clauses if c.doc_id in test}.values())
    head = [
        "# Document-grouped splits of labels/clauses.jsonl, written by `policytag labels split`.",
        "# Clauses of one document never sit on both sides of an evaluation, so every figure",
        "# measures generalisation to new documents. Read with policytag.data.dataset.load_splits().",
        f"# test_docs: {len(test)} of {len({c.doc_id for c in clauses})} documents ({n_test} clauses), drawn at random",
        f"#   (seed {splits['seed']}) within each (genre family, level) stratum, {splits['test_share']:.0%} of each;",
        "#   families: " + ", ".join(f"{k} {v}" for k, v in sorted(fam.items())) + ".",
        "#   Never used for training, threshold tuning or choosing the recipe; `policytag evaluate`",
        "#   and the retraining promotion gate score on them.",
        f"# folds: {len(splits['folds'])} document-grouped folds over the other documents for `policytag train --cv`",
        "#   (policytag.data.dataset.grouped_folds: largest documents first into the lightest fold).",
    ]
    body = yaml.safe_dump({k: splits[k] for k in ("version", "seed", "test_share", "test_docs", "dev_docs", "folds")},
                          allow_unicode=True, sort_keys=False, default_flow_style=None, width=200)
    return "\n".join(head) + "\n" + body


def group_stats(clauses: Iterable[Clause], key: str, taxonomy: Taxonomy | None = None) -> dict[str, dict[str, int]]:
    """Counts per group of documents: ``key`` is ``genre``, ``genre_family`` or ``level``.
    Each row: documents, clauses, clauses without theme / measure, and clauses per label."""
    tax = _resolve_taxonomy(taxonomy)
    rows: dict[str, dict[str, int]] = {}
    docs: dict[str, set[str]] = defaultdict(set)
    for c in clauses:
        g = genre_family(c.genre) if key == "genre_family" else (getattr(c, key) or "unknown")
        r = rows.setdefault(str(g), {"documents": 0, "clauses": 0, "no_theme": 0, "no_measure": 0,
                                     **{l: 0 for l in tax.label_ids}})
        docs[str(g)].add(c.doc_id)
        r["clauses"] += 1
        r["no_theme"] += not c.themes
        r["no_measure"] += not c.measures
        for l in list(c.themes or []) + list(c.measures or []):
            r[l] += 1
    for g, r in rows.items():
        r["documents"] = len(docs[g])
    return dict(sorted(rows.items()))
