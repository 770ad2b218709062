"""Document-grouped k-fold cross-validation of several systems on the same folds.

Every fold holds out whole documents. Each system is trained on the other documents with
its full recipe (including threshold tuning on inner out-of-fold predictions, inside the
training documents only) and scored on the held-out ones. Reported: mean ± std over folds.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Sequence

import numpy as np

from policytag.clause import Clause
from policytag.data.taxonomy import load_taxonomy
from policytag.data import dataset as D
from policytag.training.evaluation import compute_metrics, summarize_folds, use_metrics
from policytag.training.trainer import fit_with_thresholds, get, say


def system_variants(cfg: dict, backends: Sequence[str] = ("transformer", "baseline"),
                    context: str = "both") -> list[tuple[str, dict]]:
    """``[(name, config)]`` for each backend × context setting (``on``, ``off`` or ``both``)."""
    out = []
    ctx_values = {"on": [True], "off": [False], "both": [True, False],
                  "config": [bool(get(cfg, "model.use_context"))]}[context]
    for be in backends:
        for use in ctx_values:
            c = copy.deepcopy(cfg)
            c["backend"] = be
            c.setdefault("model", {})["use_context"] = use
            if be == "baseline":
                c.setdefault("baseline", {})
                if not use:
                    c["baseline"]["context_weight"] = 0.0
            out.append((system_name(c), c))
    return out


def system_name(cfg: dict) -> str:
    be = cfg["backend"]
    ctx = "context" if get(cfg, "model.use_context") else "no context"
    if be == "baseline":
        return f"baseline TF-IDF ({ctx})"
    w = float(get(cfg, "model.tfidf_weight"))
    return f"transformer {get(cfg, 'model.base')} ({ctx})" + (f" + {w:g} TF-IDF" if w > 0 else "")


def cross_validate(clauses: Sequence[Clause], systems: list[tuple[str, dict]], k: int, *,
                   progress: bool = True) -> dict:
    """Run every system on the same document-grouped folds; returns per-fold and summary metrics."""
    tax = load_taxonomy()
    clauses = list(clauses)
    y = D.label_matrix(clauses, tax)
    folds = D.grouped_folds(clauses, k)
    fold_docs = [sorted({clauses[i].doc_id for i in te}) for _, te in folds]
    result: dict[str, Any] = {"k": k, "n_clauses": len(clauses), "n_docs": len({c.doc_id for c in clauses}),
              "data_hash": D.data_hash(clauses), "fold_docs": fold_docs, "systems": {}}
    for name, cfg in systems:
        say(f"== {name}: {k}-fold document-grouped cross-validation", progress)
        per_fold, seconds = [], []
        oof = np.zeros_like(y)
        oof_probs = np.zeros(y.shape, dtype=np.float32)
        oof_presence = np.full((len(clauses), 2), np.nan, dtype=np.float32)  # stays NaN for a model without presence
        inner: dict[str, np.ndarray] = {}
        for i, (tr, te) in enumerate(folds, 1):
            say(f"-- fold {i}/{k}: held out {', '.join(fold_docs[i - 1])} ({len(te)} clauses)", progress)
            t0 = time.time()
            rec: dict[str, Any] = {}
            clf = fit_with_thresholds([clauses[j] for j in tr], cfg, progress=progress, record=rec)
            if "inner_probs" in rec:  # rows of `tr` predicted by inner models, for replaying decision rules
                cov = np.asarray(rec["inner_covered"], dtype=bool)
                inner[f"inner_index_{i}"] = np.asarray(tr)[cov]
                inner[f"inner_probs_{i}"] = np.asarray(rec["inner_probs"])[cov]
                if "inner_presence" in rec and np.isfinite(np.asarray(rec["inner_presence"])[cov]).all():
                    inner[f"inner_presence_{i}"] = np.asarray(rec["inner_presence"])[cov]
            held = [clauses[j] for j in te]
            probs = clf.predict_proba(held)
            pres = clf.presence_proba(held)
            dec = clf.decide(probs, pres)
            oof[te] = dec
            oof_probs[te] = probs
            if pres is not None:
                oof_presence[te] = pres
            m = compute_metrics(y[te], dec, tax.label_ids, len(tax.themes))
            m["held_out_docs"] = fold_docs[i - 1]
            m["seconds"] = round(time.time() - t0, 1)
            per_fold.append(m)
            seconds.append(m["seconds"])
            say(f"   themes micro-F1 {m['themes']['micro_f1']:.3f}  measures micro-F1 "
                f"{m['measures']['micro_f1']:.3f}  ({m['seconds']:.0f}s)", progress)
            del clf
        summary = summarize_folds(per_fold)
        pooled = compute_metrics(y, oof, tax.label_ids, len(tax.themes))
        pooled["use"] = use_metrics(clauses, y, oof, len(tax.themes), oof_probs)
        result["systems"][name] = {"config": {k2: v for k2, v in cfg.items() if not k2.startswith("_")},
                                   "folds": per_fold, "summary": summary, "pooled": pooled,
                                   "seconds": round(float(sum(seconds)), 1),
                                   "_oof": {"probs": oof_probs, "decisions": oof, **inner,
                                            **({"presence": oof_presence} if np.isfinite(oof_presence).all() else {})}}
    result["_clause_ids"] = [c.clause_id for c in clauses]
    return result


def replay_decisions(oof: Any, fold_docs: Sequence[Sequence[str]], clauses: Sequence[Clause], cfg: dict, *,
                     weights: Sequence[float] = (1.0,)) -> dict:
    """Cross-validation of another decision rule without retraining: for every fold, the
    thresholds and gates of ``cfg`` are tuned on that fold's inner out-of-fold probabilities
    (as :func:`fit_with_thresholds` would) and applied to its held-out probabilities.

    ``oof``: the arrays of ``cv_oof.npz``; ``weights``: per system, the weight of its
    probabilities in an average (``(1.0,)``: the first system alone; ``(0.7, 0.3)``: 0.7 × the
    first + 0.3 × the second). Presence probabilities (``presence_i``, ``inner_presence_k_i``:
    runs saved since the presence gates) are taken from the last weighted system that has them
    (the TF-IDF part of a blend; both systems of a default run hold the same TF-IDF model's);
    without them the gates read the highest probability alone.
    Returns per-fold and pooled metrics like :func:`cross_validate`.
    """
    from policytag.training.thresholds import apply_gates
    from policytag.training.trainer import tune_decisions

    tax = load_taxonomy()
    nt = len(tax.themes)
    y = D.label_matrix(clauses, tax).astype(int)

    def mix(key: str) -> np.ndarray:
        parts = [float(w) * np.asarray(oof[f"{key}_{i}"]) for i, w in enumerate(weights) if w]
        return np.sum(parts, axis=0)

    keys = set(getattr(oof, "files", None) or oof.keys())
    have = [i for i, w in enumerate(weights) if w and f"presence_{i}" in keys]
    src = have[-1] if have else None
    probs = mix("probs")
    pres_all = np.asarray(oof[f"presence_{src}"]) if src is not None else None
    dec = np.zeros_like(y)
    per_fold = []
    doc_of = np.asarray([c.doc_id for c in clauses])
    for k, docs in enumerate(fold_docs, 1):
        te = np.flatnonzero(np.isin(doc_of, list(docs)))
        idx = np.asarray(oof[f"inner_index_{k}_0"])
        inner_key = f"inner_presence_{k}_{src}"
        inner_pres = np.asarray(oof[inner_key]) if src is not None and inner_key in keys else None
        th, gates = tune_decisions(y[idx], mix(f"inner_probs_{k}"), cfg, nt, inner_pres)
        dec[te] = apply_gates((probs[te] >= th[None, :]).astype(int), probs[te], nt, gates,
                              None if pres_all is None else pres_all[te])
        m = compute_metrics(y[te], dec[te], tax.label_ids, nt)
        m["held_out_docs"] = list(docs)
        per_fold.append(m)
    pooled = compute_metrics(y, dec, tax.label_ids, nt)
    pooled["use"] = use_metrics(clauses, y, dec, nt, probs)
    return {"folds": per_fold, "summary": summarize_folds(per_fold), "pooled": pooled, "decisions": dec}
