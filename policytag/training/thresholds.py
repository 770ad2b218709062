"""Per-label decision thresholds, tuned on out-of-fold predictions."""

from __future__ import annotations

import numpy as np

from policytag.modeling.decisions import apply_gates, dimension_slices, gate_score  # noqa: F401 - apply_gates re-exported


def f1_score_binary(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float(np.sum((y == 1) & (pred == 1)))
    fp = float(np.sum((y == 0) & (pred == 1)))
    fn = float(np.sum((y == 1) & (pred == 0)))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def threshold_grid(spec=(0.05, 0.95, 0.05)) -> np.ndarray:
    lo, hi, step = spec
    return np.round(np.arange(lo, hi + 1e-9, step), 4)


def tune_thresholds(
    y_true: np.ndarray,
    probs: np.ndarray,
    *,
    grid=(0.05, 0.95, 0.05),
    default: float = 0.5,
    min_positive: int = 2,
    prior_strength: float = 0.0,
) -> np.ndarray:
    """For each label pick the threshold that maximizes F1 on (y_true, probs).

    Labels with fewer than ``min_positive`` positives keep ``default``. Ties are broken
    by taking the middle of the best plateau, which is less brittle than its edge.
    ``prior_strength`` = n₀ shrinks a tuned threshold toward ``default`` with weight
    n₀ / (n₀ + positives): a label tuned on 5 out-of-fold positives moves only part of the way
    (with n₀ = 10, a third), one tuned on 200 nearly all the way. This keeps a handful of
    positives from pulling a threshold down to 0.05.
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    cand = threshold_grid(grid)
    out = np.full(y_true.shape[1], float(default), dtype=np.float32)
    for j in range(y_true.shape[1]):
        y = y_true[:, j]
        if y.sum() < min_positive:
            continue
        scores = np.array([f1_score_binary(y, (probs[:, j] >= t).astype(int)) for t in cand])
        best = scores.max()
        if best <= 0:
            continue
        idx = np.flatnonzero(scores >= best - 1e-9)
        # middle of the longest run of best values
        runs, start = [], idx[0]
        for a, b in zip(idx, idx[1:]):
            if b != a + 1:
                runs.append((start, a))
                start = b
        runs.append((start, idx[-1]))
        s, e = max(runs, key=lambda r: r[1] - r[0])
        tuned = float(cand[(s + e) // 2])
        n_pos = float(y.sum())
        w = prior_strength / (prior_strength + n_pos) if prior_strength > 0 else 0.0
        out[j] = float(np.round(w * default + (1 - w) * tuned, 4))
    return out


def tune_gates(y_true: np.ndarray, probs: np.ndarray, thresholds: np.ndarray, n_themes: int,
               grid=(0.05, 0.95, 0.05), max_false_rate: dict | None = None,
               presence: np.ndarray | None = None, presence_dims=()) -> dict:
    """The gate per dimension that maximizes the dimension's micro-F1 on (y_true, probs), given
    the per-label thresholds; ties go to the lowest gate (the smallest change).

    ``max_false_rate`` (``{"measures": 0.12}``): only gates under which at most that share of
    the clauses with no gold label of the dimension get one are eligible (preambles must stay
    without a measure); when no gate of the grid gets there, the one with the lowest share.

    ``presence`` (``[n, 2]``, out of fold like ``probs``) with ``presence_dims``: those dimensions'
    gates compare mean(highest probability, presence probability) instead of the highest alone,
    and the result records them as ``gates["presence"]``."""
    y_true, probs = np.asarray(y_true).astype(int), np.asarray(probs)
    base = (probs >= np.asarray(thresholds)[None, :]).astype(int)
    uses = [d for d in presence_dims if presence is not None]
    out: dict = {}
    for d, (dim, sl) in enumerate(dimension_slices(n_themes, probs.shape[1])):
        t = y_true[:, sl]
        none = t.sum(axis=1) == 0
        cap = (max_false_rate or {}).get(dim)
        score = gate_score(probs[:, sl], np.asarray(presence)[:, d] if dim in uses else None)
        cands = []
        for g in [None, *threshold_grid(grid)]:
            dd = base[:, sl] if g is None else base[:, sl] * (score >= g)[:, None]
            tp, fp, fn = float((t & dd).sum()), float(((1 - t) & dd).sum()), float((t & (1 - dd)).sum())
            f = 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)
            rate = float((dd[none].sum(axis=1) > 0).mean()) if none.any() else 0.0
            cands.append((g, f, rate))
        if cap is not None:
            ok = [c for c in cands if c[2] <= float(cap) + 1e-9]
            cands = ok or [min(cands, key=lambda c: (c[2], -c[1]))]
        best, best_g = -1.0, None
        for g, f, _ in cands:
            if f > best + 1e-9:
                best, best_g = f, g
        out[dim] = None if best_g is None else float(best_g)
    presence_used = [d for d in uses if out.get(d) is not None]
    if presence_used:
        out["presence"] = presence_used
    return out
