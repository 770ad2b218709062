"""Decision rules replayed on a saved cross-validation, without retraining.

    python scripts/oof_study.py REPORT_DIR [--rule "NAME|w1,w2|key=value;key=value" ...]

REPORT_DIR is what ``policytag train --cv K --report-dir REPORT_DIR`` wrote: ``cv.json`` and
``cv_oof.npz`` with, per system, every held-out clause's probabilities and, per fold, the
inner out-of-fold probabilities its thresholds were tuned on. Each rule re-tunes thresholds
and gates exactly as training does (``policytag.training.crossval.replay_decisions``), on the
inner predictions of each fold only, so no rule sees the documents it is scored on; the fixed
test documents are not in these files at all.

A rule: a name, the weights of the systems' probabilities (``1,0``: the first system — the
transformer — alone; ``0.7,0.3``: an average with the TF-IDF baseline) and ``thresholds.*``
overrides of the configuration the cross-validation ran with (recorded in ``cv.json``). Without ``--rule`` a standard set is run. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from policytag.config import apply_overrides
from policytag.data import dataset as D
from policytag.training.crossval import replay_decisions
from policytag.training.reports import read_cv_run

STANDARD = [
    "as trained (replayed)|1,0|",
    "no gates|1,0|thresholds.gates=false",
    "no shrinkage|1,0|thresholds.prior_strength=0",
    "measure gate ≤ 15 % false|1,0|thresholds.max_false_measure_rate=0.15",
    "measure gate ≤ 12 % false|1,0|thresholds.max_false_measure_rate=0.12",
    "measure gate ≤ 10 % false|1,0|thresholds.max_false_measure_rate=0.10",
    "0.8 transformer + 0.2 TF-IDF|0.8,0.2|",
    "0.7 transformer + 0.3 TF-IDF|0.7,0.3|",
    "0.6 transformer + 0.4 TF-IDF|0.6,0.4|",
    "0.7 + 0.3 TF-IDF, gate ≤ 12 %|0.7,0.3|thresholds.max_false_measure_rate=0.12",
    "TF-IDF alone (replayed)|0,1|",
]


def fit_presence(oof: dict, fold_docs, clauses, cfg: dict, system: int, *, probs: bool = False) -> None:
    """Adds ``presence_{system}`` and ``inner_presence_{k}_{system}`` to ``oof``: the presence
    probabilities the TF-IDF model (section ``baseline`` of ``cfg``) gives, trained exactly where
    the run's models were (each fold's training documents; for the inner predictions, those
    minus the documents of the inner held-out rows). ``probs``: also replace that system's label
    probabilities (``probs_*``, ``inner_probs_*``) by the refitted model's (``--refit-tfidf``)."""
    from policytag.data.taxonomy import load_taxonomy
    from policytag.training.trainer import fit_classifier

    tax = load_taxonomy()
    y = D.label_matrix(clauses, tax)
    doc = np.asarray([c.doc_id for c in clauses])
    bcfg = {**cfg, "backend": "baseline"}
    held = np.full((len(clauses), 2), np.nan, dtype=np.float32)
    held_probs = np.array(oof[f"probs_{system}"], dtype=np.float32, copy=True)

    def fit_predict(train_rows, rows):
        m = fit_classifier([clauses[j] for j in train_rows], y[train_rows], bcfg)
        rows_c = [clauses[j] for j in rows]
        return m.presence_proba(rows_c), m.predict_proba(rows_c)

    for k, docs in enumerate(fold_docs, 1):
        te = np.flatnonzero(np.isin(doc, list(docs)))
        tr = np.flatnonzero(~np.isin(doc, list(docs)))
        idx = np.asarray(oof[f"inner_index_{k}_0"])
        inner_tr = np.setdiff1d(tr, np.flatnonzero(np.isin(doc, list(set(doc[idx])))))
        oof[f"inner_presence_{k}_{system}"], inner_p = fit_predict(inner_tr, idx)
        held[te], held_probs[te] = fit_predict(tr, te)
        if probs:
            oof[f"inner_probs_{k}_{system}"] = inner_p
    oof[f"presence_{system}"] = held
    if probs:
        oof[f"probs_{system}"] = held_probs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report_dir", type=Path)
    ap.add_argument("--rule", action="append", help="NAME|weights|overrides (see the module docstring)")
    ap.add_argument("--json", type=Path, help="also write every rule's figures here")
    ap.add_argument("--refit-tfidf", action="append", metavar="KEY=VALUE",
                    help="refit the TF-IDF system on the run's folds and inner folds with this override of the "
                         "config (e.g. baseline.C=2; repeatable) before replaying: a TF-IDF recipe tried in the blend")
    ap.add_argument("--fit-presence", action="store_true",
                    help="a run saved before the presence gates: fit the TF-IDF system's presence classifiers "
                         "on the run's own folds and inner folds (seconds per fold) so rules can read them")
    args = ap.parse_args(argv)
    # the rule "as trained" is the run's own config (recorded in cv.json); keys added since come from configs/default.yaml
    cv, oof, clauses, base = read_cv_run(args.report_dir)
    systems = list(oof["systems"])
    for k in range(1, len(cv["fold_docs"]) + 1):
        if f"inner_index_{k}_1" in oof and not np.array_equal(oof[f"inner_index_{k}_0"], oof[f"inner_index_{k}_1"]):
            raise SystemExit(f"fold {k}: the systems' inner folds differ; cannot average them")
    if args.refit_tfidf:
        fit_presence(oof, cv["fold_docs"], clauses, apply_overrides(base, args.refit_tfidf), system=len(systems) - 1,
                     probs=True)
        print(f"TF-IDF system refitted with {args.refit_tfidf}")
    elif args.fit_presence:
        fit_presence(oof, cv["fold_docs"], clauses, base, system=len(systems) - 1)
    print(f"{len(clauses)} clauses from {cv['n_docs']} documents, {cv['k']} document-grouped folds; systems: "
          + "; ".join(f"{i}: {n}" for i, n in enumerate(systems)) + f"; data hash {cv['data_hash'][:12]}")
    print()
    print("| rule | themes micro-F1 (pooled) | measures micro-F1 (pooled) | folds mean ± sd themes / measures | "
          "no-measure clauses given a measure | no-theme given a theme |")
    print("|---|---|---|---|---|---|")
    out = {}
    for spec in args.rule or STANDARD:
        name, w, ov = (spec.split("|") + ["", ""])[:3]
        weights = [float(x) for x in w.split(",")] if w else [1.0]
        cfg = apply_overrides(base, [o for o in ov.split(";") if o])
        r = replay_decisions(oof, cv["fold_docs"], clauses, cfg, weights=weights)
        p, s, u = r["pooled"], r["summary"], r["pooled"]["use"]
        print(f"| {name} | {p['themes']['micro_f1']:.3f} | {p['measures']['micro_f1']:.3f} | "
              f"{s['themes']['micro_f1']['mean']:.3f} ± {s['themes']['micro_f1']['std']:.3f} / "
              f"{s['measures']['micro_f1']['mean']:.3f} ± {s['measures']['micro_f1']['std']:.3f} | "
              f"{u['no_measures']['rate']:.1%} | {u['no_themes']['rate']:.1%} |", flush=True)
        out[name] = {"weights": weights, "overrides": ov, "pooled": {d: p[d]["micro_f1"] for d in ("themes", "measures")},
                     "folds": {d: s[d]["micro_f1"] for d in ("themes", "measures")},
                     "no_measure_rate": u["no_measures"]["rate"], "no_theme_rate": u["no_themes"]["rate"]}
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
