"""Decision rules studied on saved out-of-fold probabilities, without retraining.

    python scripts/oof_study.py REPORT_DIR [--target 0.12]

REPORT_DIR is what ``policytag train --cv K --report-dir REPORT_DIR`` wrote (``cv.json`` and
``cv_oof.npz``, one row per clause of the training documents, each predicted by the model that
did not see its document). For every outer fold the rule is tuned on the *other* folds'
out-of-fold probabilities and applied to this fold (cross-fitting): no rule ever sees the
documents it is scored on, and the fixed test documents are not in these files at all.

Rules: the decisions the pipeline made (thresholds tuned inside each fold); per-label
thresholds with shrinkage + gates re-tuned on the other folds; the same on an average of the
transformer and the TF-IDF probabilities (weight w); and each with the measure gate raised
until at most ``--target`` of the no-measure clauses of the tuning folds get a measure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from policytag.data import dataset as D
from policytag.data.taxonomy import load_taxonomy
from policytag.training.evaluation import compute_metrics
from policytag.training.thresholds import apply_gates, tune_gates, tune_thresholds

GRID = (0.05, 0.95, 0.05)


def rates(y: np.ndarray, dec: np.ndarray, n_themes: int) -> tuple[float, float]:
    out = []
    for sl in (slice(n_themes, None), slice(0, n_themes)):
        none = y[:, sl].sum(1) == 0
        out.append(float((dec[none][:, sl].sum(1) > 0).mean()) if none.any() else float("nan"))
    return out[0], out[1]


def decide(probs_tune, y_tune, probs_apply, n_themes, target=None):
    th = tune_thresholds(y_tune, probs_tune, grid=GRID, default=0.5, min_positive=2, prior_strength=10.0)
    gates = tune_gates(y_tune, probs_tune, th, n_themes, grid=GRID, max_false_rate={"measures": target} if target else None)
    return apply_gates((probs_apply >= th[None, :]).astype(int), probs_apply, n_themes, gates), gates


def auc(scores: np.ndarray, pos: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    n1, n0 = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report_dir", type=Path)
    ap.add_argument("--target", type=float, default=0.12, help="largest share of no-measure clauses given a measure")
    ap.add_argument("--weights", default="1.0,0.8,0.7,0.6,0.5", help="transformer weights of the average")
    args = ap.parse_args(argv)
    cv = json.loads((args.report_dir / "cv.json").read_text(encoding="utf-8"))
    oof = np.load(args.report_dir / "cv_oof.npz")
    names = list(oof["systems"])
    tax = load_taxonomy()
    nt = len(tax.themes)
    by_id = {c.clause_id: c for c in D.load_gold()}
    clauses = [by_id[i] for i in oof["clause_ids"]]
    y = D.label_matrix(clauses, tax).astype(int)
    fold_of = np.zeros(len(clauses), dtype=int)
    for k, docs in enumerate(cv["fold_docs"]):
        fold_of[np.isin([c.doc_id for c in clauses], docs)] = k
    ti = next(i for i, n in enumerate(names) if n.startswith("transformer"))
    bi = next((i for i, n in enumerate(names) if n.startswith("baseline")), None)
    pt = oof[f"probs_{ti}"]
    pb = oof[f"probs_{bi}"] if bi is not None else None
    has_m = y[:, nt:].sum(1) > 0
    print(f"{len(clauses)} clauses, {len(cv['fold_docs'])} folds; {int((~has_m).sum())} without a measure")
    print(f"AUC of the highest measure probability for 'has a measure': transformer {auc(pt[:, nt:].max(1), has_m):.3f}"
          + (f", baseline {auc(pb[:, nt:].max(1), has_m):.3f}" if pb is not None else ""))
    rules: dict[str, np.ndarray] = {f"pipeline: {n}": oof[f"decisions_{i}"] for i, n in enumerate(names)}
    weights = [float(w) for w in args.weights.split(",")] if pb is not None else [1.0]
    for w in weights:
        p = pt if w == 1.0 else w * pt + (1 - w) * pb
        for target in (None, args.target):
            dec = np.zeros_like(y)
            for k in range(len(cv["fold_docs"])):
                te, tr = fold_of == k, fold_of != k
                dec[te], _ = decide(p[tr], y[tr], p[te], nt, target)
            name = ("transformer" if w == 1.0 else f"{w:.1f}·transformer + {1 - w:.1f}·TF-IDF") + \
                   (f", measure gate ≤ {target:.0%} false" if target else "")
            rules[name] = dec
    print("| rule | themes micro-F1 | measures micro-F1 | folds mean ± sd (themes / measures) | "
          "no-measure given one | no-theme given one |")
    print("|---|---|---|---|---|---|")
    for name, dec in rules.items():
        m = compute_metrics(y, dec, tax.label_ids, nt)
        per = [compute_metrics(y[fold_of == k], dec[fold_of == k], tax.label_ids, nt) for k in range(len(cv["fold_docs"]))]
        ft = np.array([f["themes"]["micro_f1"] for f in per])
        fm = np.array([f["measures"]["micro_f1"] for f in per])
        fr, tr_ = rates(y, dec, nt)
        print(f"| {name} | {m['themes']['micro_f1']:.3f} | {m['measures']['micro_f1']:.3f} | "
              f"{ft.mean():.3f} ± {ft.std():.3f} / {fm.mean():.3f} ± {fm.std():.3f} | {fr:.1%} | {tr_:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
