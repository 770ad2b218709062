"""How good is a model: per-label and per-dimension metrics, and grouped cross-validation.

Macro F1 averages over the labels that occur in the gold data being scored (a label
with no gold example has no defined recall); micro F1 pools all decisions of a
dimension. Exact match: the predicted set of a dimension equals the gold set.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from policytag.taxonomy import load_taxonomy


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, label_ids: Sequence[str], n_themes: int) -> dict:
    """Metrics from 0/1 matrices ``[n, labels]`` (themes first, then measures)."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    per_label = {}
    for j, lab in enumerate(label_ids):
        t, p = y_true[:, j], y_pred[:, j]
        tp, fp, fn = float(((t == 1) & (p == 1)).sum()), float(((t == 0) & (p == 1)).sum()), float(((t == 1) & (p == 0)).sum())
        pr, rc, f1 = _prf(tp, fp, fn)
        per_label[lab] = {"precision": round(pr, 4), "recall": round(rc, 4), "f1": round(f1, 4),
                          "support": int(t.sum()), "predicted": int(p.sum())}
    out: dict[str, Any] = {"n": int(len(y_true)), "per_label": per_label}
    dims = {"themes": slice(0, n_themes), "measures": slice(n_themes, len(label_ids)), "all": slice(0, len(label_ids))}
    for dim, sl in dims.items():
        t, p = y_true[:, sl], y_pred[:, sl]
        tp, fp, fn = float((t & p).sum()), float(((1 - t) & p).sum()), float((t & (1 - p)).sum())
        mp, mr, mf = _prf(tp, fp, fn)
        labs = list(label_ids[sl])
        supported = [per_label[lab]["f1"] for lab in labs if per_label[lab]["support"] > 0]
        out[dim] = {
            "micro_precision": round(mp, 4), "micro_recall": round(mr, 4), "micro_f1": round(mf, 4),
            "macro_f1": round(float(np.mean(supported)) if supported else 0.0, 4),
            "exact_match": round(float((t == p).all(axis=1).mean()) if len(t) else 0.0, 4),
            "labels_with_support": len(supported),
        }
    return out


def evaluate(model, clauses, *, taxonomy=None, batch_size: int | None = None, progress: bool = False,
             probs: np.ndarray | None = None) -> dict:
    """Score ``model`` (a PolicyClassifier) on labeled ``clauses``."""
    from policytag.training.data import label_matrix

    tax = taxonomy or load_taxonomy()
    if list(model.label_ids) != list(tax.label_ids):
        from policytag.errors import PolicytagError

        raise PolicytagError(
            f"model labels {model.label_ids} differ from taxonomy {tax.version} labels; retrain the model")
    clauses = list(clauses)
    y = label_matrix(clauses, tax)
    if probs is None:
        probs = model.predict_proba(clauses, batch_size=batch_size, progress=progress)
    pred = model.decide(probs)
    m = compute_metrics(y, pred, model.label_ids, len(tax.themes))
    m["model"] = {"version": model.version, "backend": model.backend,
                  "base_model": (model.metadata.get("base_model") or {}).get("name", model.backend),
                  "use_context": bool(model.metadata.get("input", {}).get("use_context", True))}
    return m


def summarize_folds(fold_metrics: list[dict]) -> dict:
    """Mean and standard deviation over folds of every dimension-level and per-label figure."""
    out: dict[str, Any] = {"folds": len(fold_metrics)}
    for dim in ("themes", "measures", "all"):
        out[dim] = {}
        for key in ("micro_f1", "macro_f1", "exact_match", "micro_precision", "micro_recall"):
            vals = np.array([m[dim][key] for m in fold_metrics], dtype=float)
            out[dim][key] = {"mean": round(float(vals.mean()), 4), "std": round(float(vals.std(ddof=0)), 4)}
    labs = list(fold_metrics[0]["per_label"]) if fold_metrics else []
    out["per_label"] = {}
    for lab in labs:
        f1s = [m["per_label"][lab]["f1"] for m in fold_metrics if m["per_label"][lab]["support"] > 0]
        out["per_label"][lab] = {
            "f1_mean": round(float(np.mean(f1s)), 4) if f1s else None,
            "f1_std": round(float(np.std(f1s)), 4) if f1s else None,
            "support": int(sum(m["per_label"][lab]["support"] for m in fold_metrics)),
        }
    return out
