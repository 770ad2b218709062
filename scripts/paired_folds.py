"""A recipe change tried on some folds of a saved cross-validation, paired with that run's figures.

    python scripts/paired_folds.py REPORT_DIR --folds 1,2,3 --set model.train_layers=6 [--set ...]

A full 10-fold transformer cross-validation takes ~45 min on the project's 2-core CPU; a
change to the training recipe can be screened on a few of the *same* folds in a fraction of
that. REPORT_DIR is a ``policytag train --cv K --report-dir`` run with ``cv_oof.npz`` (system
0: the transformer, system 1: the TF-IDF baseline). The same clauses (the run's clause ids, in
its order) give the same document-grouped folds (checked); on each chosen fold the
transformer is trained with the run's recorded config plus the ``--set`` overrides and the
TF-IDF weight forced to 0, keeping its inner out-of-fold probabilities (when the change moves
the inner folds, e.g. ``thresholds.inner_folds``, the TF-IDF model's inner out-of-fold
probabilities are recomputed on the new inner folds; its held-out ones stay). Then each decision
rule (the standard set below, as in ``scripts/oof_study.py``) is replayed for the old and the
new transformer on those folds only (the TF-IDF part of a blend is the saved run's, on the
same inner folds), and the per-fold micro-F1 are printed side by side with the mean paired
difference, and the share of the chosen folds' no-measure clauses given a measure per rule
(``--json F`` also saves the new transformer's predictions as ``F`` with ``.npz``). The fixed
test documents are not in these files. Fold numbers are chosen before
looking at results (the default 1,2,3).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from policytag.config import apply_overrides
from policytag.data import dataset as D
from policytag.data.taxonomy import load_taxonomy
from policytag.training.crossval import replay_decisions
from policytag.training.reports import read_cv_run
from policytag.training.trainer import fit_with_thresholds

RULES = [
    ("transformer alone, as trained", [1.0, 0.0], []),
    ("0.6 transformer + 0.4 TF-IDF", [0.6, 0.4], []),
    ("0.6 + 0.4 TF-IDF, measure gate ≤ 12 % (the default rule)", [0.6, 0.4], ["thresholds.max_false_measure_rate=0.12"]),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report_dir", type=Path)
    ap.add_argument("--folds", default="1,2,3", help="comma-separated fold numbers (1-based)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override KEY=VALUE")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--fit-presence", action="store_true",
                    help="a run saved before the presence gates: fit the TF-IDF part's presence classifiers on "
                         "the run's folds first (scripts/oof_study.py --fit-presence), so the rules read them")
    args = ap.parse_args(argv)
    cv, oof, clauses, base = read_cv_run(args.report_dir)
    if args.fit_presence and "presence_1" not in oof:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from oof_study import fit_presence

        fit_presence(oof, cv["fold_docs"], clauses, base, system=1)
    folds = D.grouped_folds(clauses, int(cv["k"]))
    docs = [sorted({clauses[i].doc_id for i in te}) for _, te in folds]
    if docs != cv["fold_docs"]:
        raise SystemExit("the folds rebuilt from the saved clauses differ from the run's: cannot pair")
    train_cfg = apply_overrides({**base, "backend": "transformer"}, [*args.overrides, "model.tfidf_weight=0"])
    base_cfg = apply_overrides({**base, "backend": "baseline"}, [*args.overrides, "model.tfidf_weight=0"])
    chosen = [int(x) for x in args.folds.split(",") if x.strip()]
    new = {"probs_0": np.array(oof["probs_0"]), "probs_1": oof["probs_1"]}
    if "presence_1" in oof:  # the TF-IDF part's presence probabilities (the presence gate reads them)
        new["presence_1"] = oof["presence_1"]
    print(f"{len(clauses)} clauses, {cv['k']} folds; training folds {chosen} with {args.overrides or 'no change'}",
          flush=True)
    seconds = {}
    for k in chosen:
        tr, te = folds[k - 1]
        t0 = time.time()
        rec: dict = {}
        clf = fit_with_thresholds([clauses[j] for j in tr], train_cfg, progress=False, record=rec)
        new["probs_0"][te] = clf.predict_proba([clauses[j] for j in te])
        cov = np.asarray(rec["inner_covered"], dtype=bool)
        idx = np.asarray(tr)[cov]
        new[f"inner_index_{k}_0"] = idx
        new[f"inner_probs_{k}_0"] = np.asarray(rec["inner_probs"])[cov]
        if np.array_equal(idx, oof[f"inner_index_{k}_0"]):
            new[f"inner_probs_{k}_1"] = oof[f"inner_probs_{k}_1"]
            if f"inner_presence_{k}_1" in oof:
                new[f"inner_presence_{k}_1"] = oof[f"inner_presence_{k}_1"]
        else:  # the change moved the inner folds (thresholds.inner_folds, ...): the TF-IDF part's inner predictions again
            rec_b: dict = {}
            fit_with_thresholds([clauses[j] for j in tr], base_cfg, progress=False, record=rec_b)
            cov_b = np.asarray(rec_b["inner_covered"], dtype=bool)
            if not np.array_equal(cov_b, cov):
                raise SystemExit(f"fold {k}: the TF-IDF model's inner folds differ from the transformer's")
            new[f"inner_probs_{k}_1"] = np.asarray(rec_b["inner_probs"])[cov_b]
            if "presence_1" in new:
                new[f"inner_presence_{k}_1"] = np.asarray(rec_b["inner_presence"])[cov_b]
            print(f"fold {k}: inner folds changed; TF-IDF inner predictions recomputed on them", flush=True)
        seconds[k] = round(time.time() - t0)
        print(f"fold {k}: trained in {seconds[k]} s", flush=True)
        del clf
    sub_docs = [cv["fold_docs"][k - 1] for k in chosen]
    out: dict = {"folds": chosen, "overrides": args.overrides, "seconds": seconds, "rules": {}}
    print()
    print("| rule | dimension | " + " | ".join(f"fold {k} old → new" for k in chosen) + " | mean old → new (Δ) |")
    print("|---|---|" + "---|" * (len(chosen) + 1))
    te_all = np.concatenate([folds[k - 1][1] for k in chosen])
    tax = load_taxonomy()
    nt = len(tax.themes)
    y = D.label_matrix(clauses, tax).astype(int)
    none = y[te_all, nt:].sum(axis=1) == 0
    false_rates = []
    for name, w, ov in RULES:
        cfg = apply_overrides(base, ov)
        old_r = replay_decisions(oof, cv["fold_docs"], clauses, cfg, weights=w)
        new_r = replay_decisions(_renumber(new, chosen), sub_docs, clauses, cfg, weights=w)
        out["rules"][name] = {}
        for dim in ("themes", "measures"):
            a = [old_r["folds"][k - 1][dim]["micro_f1"] for k in chosen]
            b = [f[dim]["micro_f1"] for f in new_r["folds"]]
            cells = " | ".join(f"{x:.3f} → {y:.3f}" for x, y in zip(a, b))
            print(f"| {name} | {dim} | {cells} | {np.mean(a):.3f} → {np.mean(b):.3f} ({np.mean(b) - np.mean(a):+.3f}) |")
            out["rules"][name][dim] = {"old": a, "new": b}
        rates = [float((r["decisions"][te_all][none, nt:].sum(axis=1) > 0).mean()) for r in (old_r, new_r)]
        out["rules"][name]["false_measure_rate"] = {"old": rates[0], "new": rates[1]}
        false_rates.append((name, rates))
    print()
    print(f"no-measure clauses of these folds given a measure ({int(none.sum())} clauses): "
          + "; ".join(f"{name}: {a:.1%} → {b:.1%}" for name, (a, b) in false_rates))
    if args.json:
        np.savez(args.json.with_suffix(".npz"), **_renumber(new, chosen), clause_ids=np.asarray(oof["clause_ids"]),
                 folds=np.asarray(chosen))
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


def _renumber(arrays: dict, chosen: list[int]) -> dict:
    """The chosen folds' inner arrays renumbered 1..n, as replay_decisions expects for a sub-list of folds."""
    out = {key: arrays[key] for key in ("probs_0", "probs_1", "presence_1") if key in arrays}
    for n, k in enumerate(chosen, 1):
        for key in ("inner_index_{}_0", "inner_probs_{}_0", "inner_probs_{}_1", "inner_presence_{}_1"):
            if key.format(k) in arrays:
                out[key.format(n)] = arrays[key.format(k)]
    return out


if __name__ == "__main__":
    sys.exit(main())
