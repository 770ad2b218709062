"""How fast is `policytag predict` on this machine, and what does int8 cost in labels?

    python benchmarks/predict_speed.py MODEL_DIR [--rounds 2] [--variants smooth,dynamic,dynamic-nofo,blockwise]
                                                 [--naive-max 200] [--json out.json]

On the same clauses (the segmented seed documents, repeated to --min-clauses if asked), in
one run, with the methods interleaved over --rounds rounds (best kept), it times:

* the naive loop: PyTorch ``model.predict([clause])`` one clause at a time;
* ``predict --runtime torch``: the tagging service with PyTorch (length-sorted batches);
* ``predict`` as it runs by default (``predict.runtime: auto``: the model's fast runtime
  on a CPU: int8 + fp32 re-check of near-threshold clauses);
* ONNX fp32, and every int8 variant asked for, each alone and with the fp32 re-check.

For every ONNX method: the share of clauses with PyTorch's labels (on the timed clauses
and on the gold clauses), micro-F1 on the gold clauses (all; the fixed test documents),
clauses re-checked. Then, each in a fresh process: load time (model load + first clause)
and peak memory, for PyTorch and the default; the model directory's size; the load
average at start and end. MODEL_DIR defaults to the registry's production model; a model
without a fast runtime gets one in a temporary directory (the model is not modified).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET_VS_TORCH = 2.5
TARGET_AGREEMENT = 0.995
VARIANT_SETTINGS = {
    "smooth": {"method": "smooth-dynamic"},
    "dynamic": {"method": "dynamic"},
    "dynamic-nofo": {"method": "dynamic", "exclude": [f"/net/encoder/encoder/layer.{i}/output/dense/MatMul"
                                                      for i in range(24)]},
    "blockwise": {"method": "blockwise"},
}
VARIANT_NAMES = {"smooth": "int8 smooth-dynamic (outlier migration)", "dynamic": "int8 quantize_dynamic",
                 "dynamic-nofo": "int8 quantize_dynamic, FFN output layers fp32",
                 "blockwise": "int8 blockwise (MatMulNBits)"}


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


def agreement(model, a: np.ndarray, b: np.ndarray, clauses) -> float:
    """Share of ``clauses`` whose labels (thresholds, then gates: ``model.decide``) are the same."""
    presence = model.presence_proba(clauses)
    return float(np.mean(np.all(model.decide(a, presence) == model.decide(b, presence), axis=1)))


def gold_sets():
    from policytag import paths

    if not paths.GOLD_FILE.exists():
        return {}
    from policytag.data.dataset import load_gold, load_splits

    gold = load_gold()
    sets = {"gold (all)": gold} if gold else {}
    try:
        test_docs = set(load_splits()["test_docs"])
        test = [c for c in gold if c.doc_id in test_docs]
        if test:
            sets[f"gold test docs ({', '.join(sorted(test_docs))})"] = test
    except Exception:  # noqa: BLE001 - no splits: all gold only
        pass
    return sets


LOAD_CODE = """
import json, resource, sys, time
t0 = time.perf_counter()
from policytag.serving.tagging import load_model, tag_clauses
m = load_model(sys.argv[1], runtime=sys.argv[2])
t1 = time.perf_counter()
tag_clauses(m, ["开展科普进校园活动，加大科普经费投入。"])
t2 = time.perf_counter()
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
print(json.dumps({"load_s": t1 - t0, "first_clause_s": t2 - t1, "backend": m.backend,
                  "peak_rss_mb": int(hwm[0].split()[1]) / 1024 if hwm else
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "torch_imported": "torch" in sys.modules}))
"""


def fresh_load(model_dir: Path, runtime: str, rounds: int = 3) -> dict:
    best: dict = {}
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", LOAD_CODE, str(model_dir), runtime], capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        got = json.loads(out.stdout.strip().splitlines()[-1])
        if not best or got["load_s"] + got["first_clause_s"] < best["load_s"] + best["first_clause_s"]:
            best = got
    return best


def dir_sizes(model_dir: Path) -> dict:
    files = {str(p.relative_to(model_dir)): p.stat().st_size / 1e6 for p in model_dir.rglob("*") if p.is_file()}
    return {"total_mb": sum(files.values()), "files_mb": files}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", nargs="?", help="model directory (default: registry production model)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: configs/predict.yaml")
    ap.add_argument("--min-clauses", type=int, default=0, help="repeat the seed clauses up to this many")
    ap.add_argument("--clauses", choices=("seed", "corpus"), default="seed",
                    help="seed: the 5 segmented seed documents (= the gold clauses, mostly training data); "
                         "corpus: 505 clauses spread over the shipped corpus documents (unseen text)")
    ap.add_argument("--naive-max", type=int, default=0,
                    help="time the naive loop on an even sample of N clauses (0: all; rates stay comparable)")
    ap.add_argument("--rounds", type=int, default=2, help="timed runs per method, interleaved; the best is kept")
    ap.add_argument("--variants", default="smooth,dynamic,dynamic-nofo",
                    help=f"int8 variants to compare (of {', '.join(VARIANT_SETTINGS)}; '' for none)")
    ap.add_argument("--recheck-margin", type=float, default=None,
                    help="log-odds margin of the fp32 re-check (default: predict.onnx_recheck_margin)")
    ap.add_argument("--no-load", action="store_true", help="skip the fresh-process load measurements")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    la0 = os.getloadavg()
    print(f"load average at start: {la0[0]:.2f} {la0[1]:.2f} {la0[2]:.2f} (2-core machine shared with others: "
          "figures under load are slower and noisier)", flush=True)

    import torch

    from policytag.modeling import onnx_runtime as ox
    from policytag.modeling.classifier import attach_companion
    from policytag.modeling.classifier import PolicyClassifier, read_metadata
    from policytag.modeling.fast_runtime import fast_runtime_status
    from policytag.serving import tagging
    from policytag.training.evaluation import evaluate

    model_dir = tagging.resolve_model_dir(args.model_dir)
    meta = read_metadata(model_dir)
    model = PolicyClassifier.from_pretrained(model_dir)
    if model.backend != "transformer":
        print("a baseline model: nothing to compare (it has no ONNX runtime)")
        return 2
    bs = args.batch_size or tagging.default_batch_size(model)
    margin = ox.recheck_default() if args.recheck_margin is None else args.recheck_margin
    clauses = seed_clauses(args.min_clauses) if args.clauses == "seed" else ox.calibration_clauses(1010)[1::2]
    n = len(clauses)
    base = meta.get("base_model") or {}
    vt = base.get("vocab_trim") if isinstance(base, dict) else None
    print(f"model: {model_dir} (version {model.version}, base {base.get('name') if isinstance(base, dict) else base}, "
          f"vocabulary {vt['vocab_size'] if vt else 'untrimmed'})")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), onnxruntime {ox._version('onnxruntime')}")
    print(f"clauses: {n} ({'segmented seed documents' if args.clauses == 'seed' else 'corpus documents, unseen'}), "
          f"batch size {bs} (ONNX Runtime: {ox.batch_size_default() or bs}), re-check margin {margin:g} log-odds",
          flush=True)

    tmp = tempfile.TemporaryDirectory(prefix="policytag-speed-")
    ok, why = fast_runtime_status(model_dir, meta)
    if ok:
        default_model = tagging.load_model(model_dir)
        default_dir = model_dir
    else:
        print(f"the model has no usable fast runtime ({why}): writing one into a temporary copy", flush=True)
        import shutil

        default_dir = Path(tmp.name) / "model"
        shutil.copytree(model_dir, default_dir, ignore=shutil.ignore_patterns("onnx"))
        ox.export_onnx(default_dir, check=False)
        default_model = tagging.load_model(default_dir)
    print(f"default runtime: {default_model.metadata.get('runtime', default_model.backend)}")

    # self-contained fp32 export for the variants
    variants = [v for v in args.variants.split(",") if v]
    onnx_models: dict = {}
    if variants:
        vdir = Path(tmp.name) / "variants"
        t0 = time.perf_counter()
        ox.export_onnx(model_dir, vdir / "fp32", quantize=False, check=False, settings={"share_weights": False})
        full = vdir / "fp32" / ox.FP32_FILE
        print(f"fp32 export for the variants: {time.perf_counter() - t0:.0f} s", flush=True)
        for v in variants:
            d = vdir / v
            d.mkdir(parents=True)
            os.link(full, d / ox.FP32_FILE)
            t0 = time.perf_counter()
            try:
                ox.quantize_int8(full, d / ox.INT8_FILE, {**ox._export_settings(), **VARIANT_SETTINGS[v]},
                                 model_dir=model_dir, meta=meta)
            except Exception as e:  # noqa: BLE001 - e.g. blockwise without onnx-ir
                print(f"  {v}: cannot quantize ({e})")
                continue
            print(f"  {v}: quantized in {time.perf_counter() - t0:.0f} s", flush=True)
            for m in (0.0, margin):
                om = ox.OnnxClassifier._from_files(model_dir, d / ox.INT8_FILE, meta, "int8", recheck_margin=m)
                attach_companion(om, model_dir, meta)  # a blended model's TF-IDF part, as in the default path
                om.batch_size = ox.batch_size_default()  # clauses per ONNX Runtime call, as in the default path
                onnx_models[f"{v}{'+recheck' if m else ''}"] = om
        onnx_models["fp32"] = ox.OnnxClassifier._from_files(model_dir, full, meta, "fp32")
        attach_companion(onnx_models["fp32"], model_dir, meta)
        onnx_models["fp32"].batch_size = ox.batch_size_default()

    naive_idx = np.linspace(0, n - 1, min(n, args.naive_max)).round().astype(int) if args.naive_max else np.arange(n)
    naive_clauses = [clauses[i] for i in naive_idx]
    methods: dict = {
        "naive": (lambda: [model.predict([c])[0] for c in naive_clauses], len(naive_clauses)),
        "torch": (lambda: tagging.tag_clauses(model, clauses, batch_size=bs), n),
        "default": (lambda: tagging.tag_clauses(default_model, clauses, batch_size=bs), n),
    }
    for k, om in onnx_models.items():
        methods[k] = ((lambda om=om: tagging.tag_clauses(om, clauses, batch_size=bs)), n)
    for fn_model in [model, default_model, *onnx_models.values()]:  # warm-up: lazy initialisation is not timed
        fn_model.predict_proba(clauses[:8], batch_size=8)
        if getattr(fn_model, "recheck_margin", 0):
            fn_model.fp32_session()

    best = {k: 0.0 for k in methods}
    best_cpu = {k: 0.0 for k in methods}  # clauses per CPU-second of this process: less sensitive to others' load
    for rnd in range(args.rounds):
        for k, (fn, count) in methods.items():
            print(f"round {rnd + 1}/{args.rounds}: {k} on {count} clauses ...", flush=True)
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            best[k] = max(best[k], count / (time.perf_counter() - t0))
            best_cpu[k] = max(best_cpu[k], count / max(time.process_time() - c0, 1e-9))

    res: dict = {"model_dir": str(model_dir), "model_version": model.version, "n_clauses": n, "batch_size": bs,
                 "cpus": os.cpu_count(), "recheck_margin": margin, "load_average_start": la0[0], "methods": {}}
    ref = model.predict_proba(clauses, batch_size=bs)
    golds = gold_sets()
    gref = {name: model.predict_proba(g, batch_size=bs) for name, g in golds.items()}
    f1_torch = {name: evaluate(model, g, probs=gref[name])["all"]["micro_f1"] for name, g in golds.items()}
    for k in methods:
        row = {"clauses_per_s": best[k], "clauses_per_cpu_s": best_cpu[k], "n": methods[k][1]}
        om = default_model if k == "default" else onnx_models.get(k)
        if om is not None:
            p = om.predict_proba(clauses, batch_size=bs)
            row.update(agreement=agreement(model, p, ref, clauses), max_abs_prob_diff=float(np.abs(p - ref).max()),
                       rechecked=getattr(om, "last_rechecked", 0))
            for name, g in golds.items():
                pg = om.predict_proba(g, batch_size=bs)
                row.setdefault("gold", {})[name] = {
                    "agreement": agreement(model, pg, gref[name], g),
                    "micro_f1": evaluate(om, g, probs=pg)["all"]["micro_f1"],
                    "rechecked": getattr(om, "last_rechecked", 0)}
        res["methods"][k] = row

    if not args.no_load:
        print("fresh-process load measurements ...", flush=True)
        res["load"] = {"torch": fresh_load(model_dir, "torch"), "default": fresh_load(default_dir, "auto")}
    res["model_dir_size"] = dir_sizes(default_dir)
    la1 = os.getloadavg()
    res["load_average_end"] = la1[0]

    # ------------------------------------------------------------------ report
    m = res["methods"]
    r_naive, r_torch = m["naive"]["clauses_per_s"], m["torch"]["clauses_per_s"]
    gnames = list(golds)
    g0 = gnames[0] if gnames else None
    c_torch = m["torch"]["clauses_per_cpu_s"]
    print(f"\n| method | clauses/s | vs naive | vs `--runtime torch` | per CPU-s vs torch | labels = PyTorch "
          f"({n} {args.clauses} clauses / gold) | re-checked | micro-F1 {' / '.join(gnames)} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    f1t = " / ".join(f"{f1_torch[g]:.4f}" for g in gnames)
    print(f"| naive loop, PyTorch, 1 clause per call ({len(naive_clauses)} clauses) | {r_naive:.1f} | 1.00× | "
          f"{r_naive / r_torch:.2f}× | {m['naive']['clauses_per_cpu_s'] / c_torch:.2f}× | – | – | {f1t} |")
    print(f"| `predict --runtime torch` (batch {bs}) | {r_torch:.1f} | {r_torch / r_naive:.2f}× | 1.00× | 1.00× | – | – "
          f"| {f1t} |")
    for k, row in m.items():
        if k in ("naive", "torch"):
            continue
        label = ("**`predict` default** (" + default_model.metadata.get("runtime", "") + ")" if k == "default"
                 else ("ONNX fp32" if k == "fp32" else
                       VARIANT_NAMES[k.split("+")[0]] + (f" + fp32 re-check ({margin:g})" if "+recheck" in k else "")))
        ga = f"{row['gold'][g0]['agreement']:.1%}" if g0 else "–"
        f1 = " / ".join(f"{row['gold'][g]['micro_f1']:.4f}" for g in gnames)
        rc = f"{row['rechecked']}/{n}" + (f", {row['gold'][g0]['rechecked']}/{len(golds[g0])}" if g0 else "")
        print(f"| {label} | {row['clauses_per_s']:.1f} | {row['clauses_per_s'] / r_naive:.2f}× | "
              f"{row['clauses_per_s'] / r_torch:.2f}× | {row['clauses_per_cpu_s'] / c_torch:.2f}× | "
              f"{row['agreement']:.1%} / {ga} | {rc} | {f1} |")
    if "load" in res:
        print("\n| fresh process | load s | first clause s | peak RSS MB | torch imported |")
        print("|---|---:|---:|---:|---|")
        for k, v in res["load"].items():
            print(f"| {k} ({v['backend']}) | {v['load_s']:.2f} | {v['first_clause_s']:.2f} | {v['peak_rss_mb']:.0f} | "
                  f"{v['torch_imported']} |")
    sz = res["model_dir_size"]
    onnx_mb = sum(v for k, v in sz["files_mb"].items() if k.startswith("onnx"))
    print(f"\nmodel directory with its fast runtime: {sz['total_mb']:.1f} MB (10^6 bytes; "
          f"model.safetensors {sz['files_mb'].get('model.safetensors', 0):.1f}, onnx/ {onnx_mb:.1f})")
    d = m["default"]
    print("\ntargets:")
    ratio = d["clauses_per_s"] / r_torch
    print(f"  default >= {TARGET_VS_TORCH}x `--runtime torch`: {ratio:.2f}x {'OK' if ratio >= TARGET_VS_TORCH else 'MISSED'}")
    if g0:
        ag = d["gold"][g0]["agreement"]
        print(f"  default labels = PyTorch on >= {TARGET_AGREEMENT:.1%} of gold clauses: {ag:.2%} "
              f"{'OK' if ag >= TARGET_AGREEMENT else 'MISSED'}")
        for g in gnames:
            loss = f1_torch[g] - d["gold"][g]["micro_f1"]
            print(f"  micro-F1 lost on {g}: {loss * 100:+.2f} points {'OK' if loss <= 1e-9 else 'MISSED'}")
    print(f"  model directory <= 150 MB: {sz['total_mb']:.1f} MB {'OK' if sz['total_mb'] <= 150 else 'MISSED'}")
    print(f"load average: {la0[0]:.2f} at start, {la1[0]:.2f} at end (other work on the machine slows every method)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.json}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
