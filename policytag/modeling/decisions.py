"""From probabilities to 0/1 labels: per-label thresholds, then per-dimension gates.

A dimension's *gate* says "no label of this dimension" for a clause whose gate score is below
it. The gate score is the dimension's highest label probability or, for the dimensions listed
in ``gates["presence"]``, the mean of that and a *presence* probability: a separate model's
probability that the clause has any label of the dimension at all (the TF-IDF part's
"has a measure" classifier, trained on the same labels; see docs/recipe-search.md). The
presence model sees preambles, news lines and background sentences as a class of their own,
which the per-label probabilities only see indirectly.

``presence`` arrays are ``[n, 2]``: column 0 themes, column 1 measures.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from policytag.errors import PolicytagError

DIMENSIONS = ("themes", "measures")


def dimension_slices(n_themes: int, n_labels: int) -> list[tuple[str, slice]]:
    return [("themes", slice(0, n_themes)), ("measures", slice(n_themes, n_labels))]


def presence_dims(gates: dict | None) -> list[str]:
    """The dimensions whose gate reads the presence probability."""
    return [d for d in ((gates or {}).get("presence") or []) if d in DIMENSIONS]


def gate_score(probs_dim: np.ndarray, presence_col: np.ndarray | None = None) -> np.ndarray:
    """The score a dimension's gate compares with: the highest label probability, averaged with
    the presence probability when one is given."""
    top = np.asarray(probs_dim).max(axis=1) if np.asarray(probs_dim).shape[1] else np.zeros(len(probs_dim))
    if presence_col is None:
        return top
    return (top + np.asarray(presence_col, dtype=np.float64)) / 2.0


def check_presence(gates: dict | None, presence: np.ndarray | None, n: int, who: str = "this model") -> None:
    if presence_dims(gates) and (presence is None or np.asarray(presence).shape != (n, 2)):
        got = "none" if presence is None else f"shape {np.asarray(presence).shape}"
        raise PolicytagError(f"{who}: its {', '.join(presence_dims(gates))} gate reads the presence probability, "
                             f"[{n}, 2] expected, got {got}: pass model.presence_proba(clauses) to decide()")


def apply_gates(dec: np.ndarray, probs: np.ndarray, n_themes: int, gates: dict | None,
                presence: np.ndarray | None = None) -> np.ndarray:
    """Per dimension: a clause whose gate score is below the dimension's gate gets no label of
    that dimension ("none, with confidence"); labels of a clause that passes the gate are
    decided by their own thresholds."""
    if not gates:
        return dec
    dec = np.array(dec, copy=True)
    probs = np.asarray(probs)
    if probs.shape[0] == 0:
        return dec
    check_presence(gates, presence, probs.shape[0])
    uses = presence_dims(gates)
    for d, (dim, sl) in enumerate(dimension_slices(n_themes, probs.shape[1])):
        g = gates.get(dim)
        if g is None:
            continue
        col = np.asarray(presence)[:, d] if dim in uses else None
        dec[gate_score(probs[:, sl], col) < float(g), sl] = 0
    return dec


def decide(probs: np.ndarray, thresholds: Sequence[float] | np.ndarray, n_themes: int, gates: dict | None,
           presence: np.ndarray | None = None) -> np.ndarray:
    """0/1 decisions: thresholds, then gates (what ``PolicyClassifier.decide`` applies)."""
    probs = np.asarray(probs)
    dec = (probs >= np.asarray(thresholds, dtype=np.float32)[None, :]).astype(np.int8)
    return apply_gates(dec, probs, n_themes, gates, presence)
