"""How good is a model: per-label and per-dimension metrics, and grouped cross-validation.

Macro F1 averages over the labels that occur in the gold data being scored (a label
with no gold example has no defined recall); micro F1 pools all decisions of a
dimension. Exact match: the predicted set of a dimension equals the gold set.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from policytag.data.taxonomy import load_taxonomy


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


def _micro(y: np.ndarray, p: np.ndarray) -> float | None:
    tp, fp, fn = float((y & p).sum()), float(((1 - y) & p).sum()), float((y & (1 - p)).sum())
    return None if tp + fp + fn == 0 else round(_prf(tp, fp, fn)[2], 4)


def calibration(y: np.ndarray, probs: np.ndarray, bins: int = 10) -> dict:
    """Reliability of the probabilities: per bin the mean predicted probability, the observed
    frequency of the label and the count; ECE = count-weighted mean |observed - predicted|."""
    y, probs = np.asarray(y).ravel(), np.asarray(probs, dtype=float).ravel()
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        conf, freq = float(probs[m].mean()), float(y[m].mean())
        rows.append({"bin": [round(float(edges[b]), 2), round(float(edges[b + 1]), 2)], "mean_prob": round(conf, 4),
                     "observed": round(freq, 4), "n": int(m.sum())})
        ece += m.sum() * abs(conf - freq)
    return {"bins": rows, "ece": round(ece / max(len(y), 1), 4)}


def use_metrics(clauses: Sequence, y: np.ndarray, pred: np.ndarray, n_themes: int,
                probs: np.ndarray | None = None) -> dict:
    """Figures that match use: micro-F1 per genre family, genre and level; how often a clause
    with no gold measure (preamble, boilerplate, junk) gets one, and the same for themes;
    calibration of the probabilities per dimension."""
    from policytag.data.dataset import genre_family

    y, pred = np.asarray(y).astype(int), np.asarray(pred).astype(int)
    th, me = slice(0, n_themes), slice(n_themes, y.shape[1])
    out: dict[str, Any] = {}
    for key, fn in (("genre_family", lambda c: genre_family(getattr(c, "genre", ""))),
                    ("genre", lambda c: getattr(c, "genre", "") or "unknown"),
                    ("level", lambda c: getattr(c, "level", "") or "unknown")):
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(clauses):
            groups.setdefault(fn(c), []).append(i)
        out[f"by_{key}"] = {
            g: {"n": len(ix), "docs": len({clauses[i].doc_id for i in ix}),
                "themes_micro_f1": _micro(y[ix][:, th], pred[ix][:, th]),
                "measures_micro_f1": _micro(y[ix][:, me], pred[ix][:, me])}
            for g, ix in sorted(groups.items())}
    for dim, sl in (("measures", me), ("themes", th)):
        none = y[:, sl].sum(axis=1) == 0
        n = int(none.sum())
        false = int((pred[none][:, sl].sum(axis=1) > 0).sum()) if n else 0
        out[f"no_{dim}"] = {"n": n, "predicted_some": false, "rate": round(false / n, 4) if n else None}
    if probs is not None:
        out["calibration"] = {"themes": calibration(y[:, th], probs[:, th]),
                              "measures": calibration(y[:, me], probs[:, me])}
    return out


def bootstrap_docs(clauses: Sequence, y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray | None,
                   label_ids: Sequence[str], n_themes: int, n_boot: int = 1000, seed: int = 0) -> dict:
    """Uncertainty over documents: resample whole documents with replacement and recompute the
    mean of theme and measure micro-F1 (for one system, or the difference b - a of two).
    Returns the point estimate and the 2.5/97.5 percentiles."""
    rng = np.random.default_rng(seed)
    docs = sorted({c.doc_id for c in clauses})
    rows = {d: [i for i, c in enumerate(clauses) if c.doc_id == d] for d in docs}

    def score(ix, pred):
        m = compute_metrics(y[ix], pred[ix], label_ids, n_themes)
        return (m["themes"]["micro_f1"] + m["measures"]["micro_f1"]) / 2

    def stat(ix):
        a = score(ix, pred_a)
        return a if pred_b is None else score(ix, pred_b) - a

    full = list(range(len(clauses)))
    vals = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(docs), len(docs))
        ix = [i for k in pick for i in rows[docs[k]]]
        vals.append(stat(ix))
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return {"estimate": round(float(stat(full)), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)],
            "n_docs": len(docs), "n_boot": n_boot,
            "p_below_zero": round(float(np.mean(np.asarray(vals) < 0)), 4) if pred_b is not None else None}


def evaluate(model, clauses, *, taxonomy=None, batch_size: int | None = None, progress: bool = False,
             probs: np.ndarray | None = None) -> dict:
    """Score ``model`` (a PolicyClassifier) on labeled ``clauses``."""
    from policytag.data.dataset import label_matrix

    tax = taxonomy or load_taxonomy()
    if list(model.label_ids) != list(tax.label_ids):
        from policytag.errors import PolicytagError

        raise PolicytagError(
            f"model labels {model.label_ids} differ from taxonomy {tax.version} labels; retrain the model")
    clauses = list(clauses)
    y = label_matrix(clauses, tax)
    if probs is None:
        probs = model.predict_proba(clauses, batch_size=batch_size, progress=progress)
    pred = model.decide_clauses(probs, clauses)
    m = compute_metrics(y, pred, model.label_ids, len(tax.themes))
    m["use"] = use_metrics(clauses, y, pred, len(tax.themes), probs)
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


def evaluation_data(data=None, taxonomy=None) -> tuple[list, str]:
    """Clauses to evaluate on: ``data`` (a JSON Lines file) or the fixed test documents of splits.yaml."""
    from policytag.errors import PolicytagError
    from policytag.data import dataset as D

    if data is not None:
        return D.load_gold(data, taxonomy=taxonomy), f"{data}"
    test_docs = set(D.load_splits().get("test_docs") or [])
    if not test_docs:
        raise PolicytagError("labels/splits.yaml names no test_docs; pass --data FILE to evaluate on")
    clauses = [c for c in D.load_gold(taxonomy=taxonomy) if c.doc_id in test_docs]
    if not clauses:
        raise PolicytagError(f"the gold data has no clauses of the test documents {sorted(test_docs)}")
    return clauses, "the fixed test documents of labels/splits.yaml"


def _model_training_clauses(model, tax) -> list | None:
    """The model's training clauses, reconstructed from the gold file; None unless they match
    the model's data hash."""
    from policytag.data import dataset as D

    train_docs = set(model.metadata.get("train_docs") or [])
    try:
        cand = [c for c in D.load_gold(taxonomy=tax) if c.doc_id in train_docs]
        if cand and D.data_hash(cand) == model.metadata.get("data_hash"):
            return cand
    except Exception:  # noqa: BLE001 - no gold file: only a given baseline can be compared
        pass
    return None


def _baseline_variants(mcfg: dict) -> list[dict]:
    """The TF-IDF baseline with and without context, on the model's own config."""
    import copy

    variants = []
    base_cfg = copy.deepcopy(mcfg)
    for use in (True, False):
        c = copy.deepcopy(base_cfg)
        c["backend"] = "baseline"
        c.setdefault("model", {})["use_context"] = use
        c.setdefault("baseline", {})
        if not use:
            c["baseline"]["context_weight"] = 0.0
        variants.append(c)
    return variants


def _train_variants(variants: list[dict], train_clauses: list, clauses: list, tax, systems: dict[str, dict],
                    preds: dict[str, np.ndarray], progress: bool) -> None:
    """Train each variant (not already in ``systems``) on ``train_clauses`` and score it on ``clauses``."""
    from policytag.training.crossval import system_name
    from policytag.training.trainer import fit_with_thresholds, say

    for c in variants:
        n = system_name(c)
        if n in systems:
            continue
        say(f"training {n} on the model's training data", progress)
        clf = fit_with_thresholds(train_clauses, c, progress=progress)
        p = clf.predict_proba(clauses)
        systems[n] = evaluate(clf, clauses, taxonomy=tax, probs=p)
        preds[n] = clf.decide_clauses(p, clauses)


def evaluate_dir(model_dir, *, data=None, baseline_dir=None, out_dir=None, context_ablation: bool = False,
                 progress: bool = True) -> dict:
    """Evaluate a model directory next to the TF-IDF baseline; write JSON, Markdown and PNG reports.

    The baseline is ``baseline_dir`` or, if none is given, trained now on the model's own training
    data (reconstructed from the gold file and verified against the model's data hash).
    """
    import copy
    import datetime as dt
    from pathlib import Path

    from policytag import paths
    from policytag.data import dataset as D
    from policytag.modeling.classifier import PolicyClassifier
    from policytag.training.reports import write_eval_report
    from policytag.training.trainer import say

    tax = load_taxonomy()
    model = PolicyClassifier.from_pretrained(model_dir)
    clauses, desc = evaluation_data(data, tax)
    docs = sorted({c.doc_id for c in clauses})
    y = D.label_matrix(clauses, tax)
    notes = []
    leak = sorted(set(docs) & set(model.metadata.get("train_docs") or []))
    if leak:
        notes.append(f"WARNING: the model was trained on clauses of {', '.join(leak)}: these figures are not "
                     "a held-out estimate.")
    systems: dict[str, dict] = {}
    preds: dict[str, np.ndarray] = {}
    mcfg = copy.deepcopy(model.metadata.get("config") or {})
    name = f"{model.backend} {((model.metadata.get('base_model') or {}).get('name') or '')}".strip()
    name += " (context)" if model.metadata.get("input", {}).get("use_context", True) else " (no context)"
    if getattr(model, "companion_weight", 0.0):
        name += f" + {model.companion_weight:g} TF-IDF"
    say(f"scoring {name} on {len(clauses)} clauses", progress)
    probs = model.predict_proba(clauses, progress=progress)
    systems[name] = evaluate(model, clauses, taxonomy=tax, probs=probs)
    preds[name] = model.decide_clauses(probs, clauses)

    # training data of the model, for the baseline and the context ablation
    train_clauses = _model_training_clauses(model, tax)
    variants: list[dict] = []
    if baseline_dir:
        b = PolicyClassifier.from_pretrained(baseline_dir)
        bp = b.predict_proba(clauses)
        systems[f"baseline TF-IDF ({baseline_dir})"] = evaluate(b, clauses, taxonomy=tax, probs=bp)
        preds[f"baseline TF-IDF ({baseline_dir})"] = b.decide_clauses(bp, clauses)
    elif train_clauses is not None:
        variants.extend(_baseline_variants(mcfg))
        notes.append(f"Baselines trained now on the model's own training data ({len(train_clauses)} clauses, "
                     "data hash verified).")
    else:
        notes.append("No baseline shown: the model's training data could not be reconstructed from the gold file "
                     "(data hash differs); pass --baseline DIR.")
    if context_ablation and train_clauses is not None and model.backend == "transformer":
        c = copy.deepcopy(mcfg)
        c.setdefault("model", {})["use_context"] = not model.metadata.get("input", {}).get("use_context", True)
        variants.append(c)
        notes.append("Context ablation: the same transformer recipe retrained with the context switch flipped.")
    if variants:
        assert train_clauses is not None  # variants are trained only when the training data is known
        _train_variants(variants, train_clauses, clauses, tax, systems, preds, progress)
    report = {
        "created_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "model": {"dir": str(Path(model_dir).resolve()), "version": model.version, "backend": model.backend,
                  "base": (model.metadata.get("base_model") or {}).get("name"),
                  "data_hash": model.metadata.get("data_hash")},
        "data": {"description": desc, "n_clauses": len(clauses), "docs": docs, "data_hash": D.data_hash(clauses)},
        "systems": systems, "notes": notes,
    }
    if out_dir is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = paths.home() / "reports" / f"evaluate-{model.version}-{stamp}"
    files = write_eval_report(report, out_dir, gold_y=y, preds=preds, tax=tax)
    report["files"] = {k: str(v) for k, v in files.items()}
    return report
