"""Stacking instead of averaging, replayed on a saved cross-validation (negative result, kept to reproduce it).

    python scripts/stack_study.py [REPORT_DIR]     (default: docs/results/cv10-transformer)

Per fold, one logistic regression per label over both systems' log-odds (the transformer's and
the TF-IDF model's, 34 features) is fitted on that fold's inner out-of-fold probabilities
(cross-fitted in 5 document-grouped parts for the threshold tuning), thresholds and gates are
tuned as training does, and the held-out fold is scored. "avg" averages the stacked
probabilities with the plain 0.6/0.4 blend. Prints a Markdown table like scripts/oof_study.py.
"""
import json, sys, numpy as np
from pathlib import Path
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from policytag.config import apply_overrides
from policytag.data import dataset as D
from policytag.data.taxonomy import load_taxonomy
from policytag.training.reports import read_cv_run
from policytag.training.thresholds import apply_gates
from policytag.training.trainer import tune_decisions
from policytag.training.evaluation import compute_metrics, summarize_folds, use_metrics
R = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs/results/cv10-transformer"
cv, oof, clauses, base = read_cv_run(R)
tax = load_taxonomy(); nt = len(tax.themes)
y = D.label_matrix(clauses, tax).astype(int)
doc = np.asarray([c.doc_id for c in clauses])
lg = lambda p: np.log(np.clip(p, 1e-5, 1 - 1e-5) / np.clip(1 - p, 1e-5, 1))
def feats(a, b): return np.hstack([lg(a), lg(b)])
def stacker(X, Y, C):
    ms = []
    for j in range(Y.shape[1]):
        if Y[:, j].min() == Y[:, j].max(): ms.append(float(Y[0, j])); continue
        ms.append(LogisticRegression(C=C, max_iter=2000).fit(X, Y[:, j]))
    return ms
def apply(ms, X):
    return np.column_stack([np.full(len(X), m) if isinstance(m, float) else m.predict_proba(X)[:, 1] for m in ms])
def run(C, cap, mode):
    cfg = apply_overrides(base, [f"thresholds.max_false_measure_rate={cap}"])
    dec = np.zeros_like(y); folds = []; P = np.zeros(y.shape)
    for k, docs in enumerate(cv["fold_docs"], 1):
        te = np.flatnonzero(np.isin(doc, list(docs)))
        idx = np.asarray(oof[f"inner_index_{k}_0"])
        Xi = feats(oof[f"inner_probs_{k}_0"], oof[f"inner_probs_{k}_1"]); Yi = y[idx]
        Xt = feats(oof["probs_0"][te], oof["probs_1"][te])
        # cross-fitted stacked inner probabilities for the threshold tuning
        Si = np.zeros(Yi.shape)
        for a, b in GroupKFold(5).split(Xi, Yi, doc[idx]):
            Si[b] = apply(stacker(Xi[a], Yi[a], C), Xi[b])
        St = apply(stacker(Xi, Yi, C), Xt)
        if mode == "avg":  # stacked averaged with the plain blend
            bi = 0.6 * oof[f"inner_probs_{k}_0"] + 0.4 * oof[f"inner_probs_{k}_1"]
            bt = 0.6 * oof["probs_0"][te] + 0.4 * oof["probs_1"][te]
            Si, St = 0.5 * Si + 0.5 * bi, 0.5 * St + 0.5 * bt
        th, gates = tune_decisions(Yi, Si, cfg, nt)
        dec[te] = apply_gates((St >= th[None, :]).astype(int), St, nt, gates); P[te] = St
        m = compute_metrics(y[te], dec[te], tax.label_ids, nt); folds.append(m)
    s = summarize_folds(folds); pooled = compute_metrics(y, dec, tax.label_ids, nt); u = use_metrics(clauses, y, dec, nt, P)
    return s, pooled, u
if __name__ == "__main__":
    print("| rule | themes pooled | measures pooled | folds mean ± sd (themes / measures) | no-measure given a measure | no-theme given a theme |")
    print("|---|---|---|---|---|---|")
    for C in (0.3, 1.0):
        for mode in ("stack", "avg"):
            for cap in ("null", 0.12):
                s, p, u = run(C, cap, mode)
                print(f"| C={C} {mode} cap={cap} | {p['themes']['micro_f1']:.3f} | {p['measures']['micro_f1']:.3f} | "
                      f"{s['themes']['micro_f1']['mean']:.3f} ± {s['themes']['micro_f1']['std']:.3f} / "
                      f"{s['measures']['micro_f1']['mean']:.3f} ± {s['measures']['micro_f1']['std']:.3f} | "
                      f"{u['no_measures']['rate']:.1%} | {u['no_themes']['rate']:.1%} |", flush=True)
