"""How fast is `policytag predict` on this machine, and what does ONNX int8 cost in accuracy?

On the same clauses (the segmented seed documents, repeated to --min-clauses if asked),
in one run, it times:

1. a naive loop: ``model.predict([clause])`` one clause at a time (PyTorch);
2. ``predict`` with PyTorch: the tagging service (length-sorted batches, dynamic padding,
   ``torch.inference_mode``), as ``policytag predict`` runs it;
3. ``predict`` with ONNX Runtime, int8 dynamic quantization (and fp32, for reference);

and prints clauses/s, the ratios, the share of clauses whose labels ONNX and PyTorch
agree on, and micro-F1 against the gold labels (``labels/clauses.jsonl``) when it exists
(all gold clauses, and the fixed test documents of ``labels/splits.yaml``).

    python benchmarks/predict_speed.py MODEL_DIR [--batch-size 32] [--min-clauses 0] [--json out.json]

MODEL_DIR defaults to the registry's production model. The model's ONNX export
(``MODEL_DIR/onnx``) is used when present and up to date; otherwise it is exported into a
temporary directory (the model directory is not modified).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_VS_NAIVE = 3.0
TARGET_ONNX_VS_TORCH = 1.5
TARGET_MAX_F1_LOSS = 0.01


def seed_clauses(min_clauses: int = 0) -> list:
    from policytag import paths
    from policytag.text.ingestion import load_document
    from policytag.text.segmentation import segment

    clauses = []
    for p in sorted(paths.SOURCES_DIR.glob("*.txt")):
        clauses.extend(segment(load_document(p)))
    base = list(clauses)
    while min_clauses and len(clauses) < min_clauses:
        clauses.extend(base[: min_clauses - len(clauses)])
    return clauses


def agreement(a: np.ndarray, b: np.ndarray, thresholds: np.ndarray) -> float:
    return float(np.mean(np.all((a >= thresholds) == (b >= thresholds), axis=1)))


def gold_sets():
    from policytag import paths

    if not paths.GOLD_FILE.exists():
        return {}
    from policytag.data.dataset import load_gold, load_splits

    gold = load_gold()
    if not gold:
        return {}
    sets = {"gold (all)": gold}
    try:
        test_docs = set(load_splits()["test_docs"])
        test = [c for c in gold if c.doc_id in test_docs]
        if test:
            sets[f"gold test docs ({', '.join(sorted(test_docs))})"] = test
    except Exception:  # noqa: BLE001 - no splits: all gold only
        pass
    return sets


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", nargs="?", help="model directory (default: registry production model)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: configs/predict.yaml")
    ap.add_argument("--min-clauses", type=int, default=0, help="repeat the seed clauses up to this many")
    ap.add_argument("--naive-max", type=int, default=0,
                    help="time the naive loop on the first N clauses only (0: all; rates stay comparable)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="timed runs per method, interleaved; the best is reported")
    ap.add_argument("--recheck-margin", type=float, default=0.02,
                    help="also time int8 with the fp32 re-check of clauses this close to a threshold (0: skip)")
    ap.add_argument("--compare-dynamic", action="store_true",
                    help="also time int8 made by quantize_dynamic (per-tensor activations) for comparison")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = ap.parse_args(argv)

    import torch

    from policytag.serving import tagging
    from policytag.modeling.onnx_runtime import (FP32_FILE, INT8_FILE, OnnxClassifier, export_onnx, onnx_dir,
                                               onnx_info, quantize_int8)
    from policytag.training.evaluation import evaluate
    from policytag.modeling.classifier import PolicyClassifier, read_metadata

    model_dir = tagging.resolve_model_dir(args.model_dir)
    meta = read_metadata(model_dir)
    model = PolicyClassifier.from_pretrained(model_dir)
    bs = args.batch_size or tagging.default_batch_size(model)
    clauses = seed_clauses(args.min_clauses)
    n = len(clauses)
    base = (meta.get("base_model") or {}).get("name") if isinstance(meta.get("base_model"), dict) else meta.get("base_model")
    print(f"model: {model_dir} (version {model.version}, backend {model.backend}, base {base})")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.2f}")
    print(f"clauses: {n} (segmented seed documents{' repeated' if args.min_clauses else ''}), "
          f"mean length {np.mean([len(c.text) for c in clauses]):.0f} chars, batch size {bs}")

    # warm up each path once so that lazy initialisation is not timed
    model.predict_proba(clauses[:4], batch_size=4)

    results: dict = {"model_dir": str(model_dir), "model_version": model.version, "backend": model.backend,
                     "base_model": base, "n_clauses": n, "batch_size": bs, "cpus": os.cpu_count(),
                     "load_average_start": os.getloadavg()[0], "methods": {}}

    # the naive loop may run on an even sample of the clauses (same length mix) to save time
    naive_idx = np.linspace(0, n - 1, min(n, args.naive_max)).round().astype(int) if args.naive_max else np.arange(n)
    naive_clauses = [clauses[i] for i in naive_idx]

    methods: dict = {
        "naive": (lambda: [model.predict([c])[0] for c in naive_clauses], len(naive_clauses)),
        "torch": (lambda: tagging.tag_clauses(model, clauses, batch_size=bs), n),
    }
    onnx_ok = model.backend == "transformer"
    tmp = tmp_dyn = None
    onnx_models: dict = {}
    if onnx_ok:
        info = onnx_info(model_dir)
        if info and str(info.get("source_model_version")) == str(model.version) and (onnx_dir(model_dir) / INT8_FILE).exists():
            odir = onnx_dir(model_dir)
            print(f"ONNX export found in {odir}", flush=True)
        else:
            tmp = tempfile.TemporaryDirectory(prefix="policytag-onnx-")
            odir = Path(tmp.name) / "onnx"
            print(f"exporting to ONNX (temporary: {odir}) ...", flush=True)
            t0 = time.perf_counter()
            export_onnx(model_dir, odir, check=False)
            print(f"  export + int8 quantization took {time.perf_counter() - t0:.0f} s", flush=True)
        variants = [("int8", odir / INT8_FILE, 0.0)]
        if args.recheck_margin > 0:
            variants.append((f"int8+recheck {args.recheck_margin:g}", odir / INT8_FILE, args.recheck_margin))
        variants.append(("fp32", odir / FP32_FILE, 0.0))
        if args.compare_dynamic:
            tmp_dyn = tempfile.TemporaryDirectory(prefix="policytag-onnx-dyn-")
            dyn = Path(tmp_dyn.name) / "model.int8-dynamic.onnx"
            print("  quantize_dynamic (per-channel weights, per-tensor activations) for comparison ...", flush=True)
            quantize_int8(odir / FP32_FILE, dyn, {"method": "dynamic", "per_channel": True})
            variants.insert(1, ("int8 quantize_dynamic", dyn, 0.0))
        for v, f, mg in variants:
            om = OnnxClassifier._from_files(model_dir, f, meta, v.split(" ")[0].split("+")[0], recheck_margin=mg)
            om.predict_proba(clauses[:4], batch_size=4)  # warm-up
            onnx_models[v] = om
            methods[f"onnx_{v}"] = ((lambda om=om: tagging.tag_clauses(om, clauses, batch_size=bs)), n)

    # rounds interleave the methods, so that a burst of other load hits them alike; best of the rounds
    best = {k: 0.0 for k in methods}
    for rnd in range(args.rounds):
        for k, (fn, count) in methods.items():
            print(f"round {rnd + 1}/{args.rounds}: {k} on {count} clauses ...", flush=True)
            t0 = time.perf_counter()
            fn()
            best[k] = max(best[k], count / (time.perf_counter() - t0))
    r_naive, r_torch = best["naive"], best["torch"]
    results["methods"]["naive"] = {"clauses_per_s": r_naive, "n": len(naive_clauses)}
    results["methods"]["torch"] = {"clauses_per_s": r_torch}
    p_torch_exact = model.predict_proba(clauses, batch_size=bs)
    for v, om in onnx_models.items():
        probs = om.predict_proba(clauses, batch_size=bs)
        results["methods"][f"onnx_{v}"] = {
            "clauses_per_s": best[f"onnx_{v}"],
            "label_agreement_vs_torch": agreement(probs, p_torch_exact, model.thresholds),
            "max_abs_prob_diff_vs_torch": float(np.abs(probs - p_torch_exact).max()),
            "rechecked_in_fp32": om.last_rechecked,
        }

    # accuracy against the gold labels
    f1 = {}
    for name, gold in gold_sets().items():
        ref = model.predict_proba(gold, batch_size=bs)
        f1[name] = {"n": len(gold), "torch": evaluate(model, gold, probs=ref)["all"]["micro_f1"]}
        if onnx_ok:
            for v, om in onnx_models.items():
                pg = om.predict_proba(gold, batch_size=bs)
                f1[name][f"onnx_{v}"] = evaluate(om, gold, probs=pg)["all"]["micro_f1"]
                f1[name][f"agreement_onnx_{v}"] = agreement(pg, ref, model.thresholds)
    results["micro_f1"] = f1
    results["load_average_end"] = os.getloadavg()[0]

    # ------------------------------------------------------------------ report
    m = results["methods"]
    print("\n| method | clauses/s | vs naive | vs PyTorch predict | labels = PyTorch |")
    print("|---|---:|---:|---:|---:|")
    print(f"| naive loop (PyTorch, 1 clause per call; {len(naive_clauses)} clauses) | {r_naive:.1f} | 1.00× | {r_naive / r_torch:.2f}× | – |")
    print(f"| `predict` PyTorch fp32 (batch {bs}) | {r_torch:.1f} | {r_torch / r_naive:.2f}× | 1.00× | – |")
    onnx_names = [k[len("onnx_"):] for k in m if k.startswith("onnx_")]
    for v in onnx_names:
        mm = m[f"onnx_{v}"]
        extra = f" ({mm['rechecked_in_fp32']} re-checked in fp32)" if mm["rechecked_in_fp32"] else ""
        print(f"| `predict --runtime onnx` {v}{extra} | {mm['clauses_per_s']:.1f} | {mm['clauses_per_s'] / r_naive:.2f}× | "
              f"{mm['clauses_per_s'] / r_torch:.2f}× | {mm['label_agreement_vs_torch']:.1%} |")
    if f1:
        cols = ["torch"] + ([f"onnx_{v}" for v in onnx_names] if onnx_ok else [])
        print("\n| micro-F1 (17 labels) | n | " + " | ".join(c.replace("onnx_", "ONNX ") for c in cols) + " |")
        print("|---|---:|" + "---:|" * len(cols))
        for name, d in f1.items():
            print(f"| {name} | {d['n']} | " + " | ".join(f"{d[c]:.4f}" for c in cols) + " |")
    else:
        print("\n(no labels/clauses.jsonl: micro-F1 not computed)")

    print("\ntargets:")
    ok = r_torch / r_naive >= TARGET_VS_NAIVE
    print(f"  predict >= {TARGET_VS_NAIVE}x naive loop: {r_torch / r_naive:.2f}x {'OK' if ok else 'MISSED'}")
    if "onnx_int8" in m:
        ratio = m["onnx_int8"]["clauses_per_s"] / r_torch
        print(f"  ONNX int8 >= {TARGET_ONNX_VS_TORCH}x PyTorch fp32: {ratio:.2f}x "
              f"{'OK' if ratio >= TARGET_ONNX_VS_TORCH else 'MISSED'}")
        for name, d in f1.items():
            loss = d["torch"] - d["onnx_int8"]
            print(f"  micro-F1 lost by int8 on {name}: {loss * 100:+.2f} points "
                  f"{'OK' if loss <= TARGET_MAX_F1_LOSS else 'MISSED'}")
        print(f"  ONNX int8 labels = PyTorch on {m['onnx_int8']['label_agreement_vs_torch']:.1%} of the clauses "
              f"({'OK' if m['onnx_int8']['label_agreement_vs_torch'] >= 0.99 else 'below 99%'})")
    print(f"load average: {results['load_average_start']:.2f} at start, {results['load_average_end']:.2f} at end "
          "(other work on the machine slows every method)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.json}")
    for t in (tmp, tmp_dyn):
        if t is not None:
            t.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
