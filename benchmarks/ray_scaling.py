"""Clauses/s of ``policytag predict``: the local path, and ``--engine ray`` with 1 and 2 workers.

All runs tag the same inputs: the seed documents copied ``--copies`` times (distinct file
names, so every copy is a document of its own), written to one ``.jsonl`` each. The Ray
runs use a local Ray cluster started once on the loopback address (as a running cluster
would be); each run still pays for starting its actors and loading one model per actor,
which is measured separately on a one-document input ("start-up") and subtracted to give
the steady rate.

    python benchmarks/ray_scaling.py [MODEL_DIR] [--copies 4] [--workers 1,2] [--batch-size 32]

MODEL_DIR defaults to the registry's production model; ``--build default`` instead builds a
model of the default architecture (the bundled multilingual-e5-small encoder, configs/default.yaml,
a few training steps: the speed of the default model, not its accuracy) and ``--build tiny``
the test model (into MODEL_DIR when given and absent, kept for the next run). The local path
uses ``--local-threads`` torch threads (default: all cores) in one process; each Ray worker
uses ``ray.cpus_per_worker`` (1) thread. The load average is printed: on a shared machine
the figures move with the other load.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path


def build_model(kind: str, out: Path) -> Path:
    from policytag.config import load_config
    from policytag.training.trainer import train, training_clauses

    if kind == "tiny":
        cfg = load_config("tiny", ["thresholds.inner_folds=0", "training.epochs=2"])
    else:
        cfg = load_config("default", ["thresholds.inner_folds=0", "training.max_steps=5",
                                      "evaluation.compare_baseline=false"])
    clauses, _ = training_clauses(cfg)
    return train(clauses, cfg, out, progress=False)


def make_inputs(root: Path, copies: int) -> list[Path]:
    from policytag import paths

    root.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(copies):
        for p in sorted(paths.SOURCES_DIR.glob("*.txt")):
            q = root / f"copy{k}-{p.name}"
            shutil.copy(p, q)
            out.append(q)
    return out


def opts(inputs, output, model, batch_size):
    from policytag.serving.batch import PredictOptions

    return PredictOptions(inputs=[str(p) for p in inputs], output=str(output), model=str(model),
                          batch_size=batch_size, progress=False, summary=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="model directory (default: registry production model)")
    ap.add_argument("--build", choices=["default", "tiny"], help="build a model of this architecture instead")
    ap.add_argument("--copies", type=int, default=4, help="copies of the seed documents to tag")
    ap.add_argument("--workers", default="1,2", help="Ray worker counts to time")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--local-threads", type=int, default=None, help="torch threads of the local path (default: all cores)")
    args = ap.parse_args()

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback-only local cluster
    tmp = Path(tempfile.mkdtemp(prefix="ptbench-", dir="/tmp"))
    try:
        from policytag.serving import batch, ray_engine, tagging

        if args.build and not (args.model and Path(args.model, "policytag.json").exists()):
            t0 = time.perf_counter()
            model_dir = build_model(args.build, Path(args.model) if args.model else tmp / "model")
            print(f"built a {args.build} model in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        else:
            model_dir = tagging.resolve_model_dir(args.model)
        from policytag.modeling.classifier import read_metadata

        meta = read_metadata(model_dir)
        inputs = make_inputs(tmp / "docs", args.copies)
        one = inputs[:1]

        import torch

        torch.set_num_threads(args.local_threads or os.cpu_count() or 1)  # a training config may have lowered it
        load_before = os.getloadavg()
        model = tagging.load_model(model_dir)

        # warm-up (tokenizer, kernels), then the local path with the model loaded, as `policytag predict`
        batch.run_predict(opts(one, tmp / "warm.jsonl", model_dir, args.batch_size), model=model)
        t0 = time.perf_counter()
        local = batch.run_predict(opts(inputs, tmp / "local.jsonl", model_dir, args.batch_size), model=model)
        t_local = time.perf_counter() - t0
        n = local.clauses
        results = [("local path (1 process, %d torch threads)" % torch.get_num_threads(), t_local, None, n)]
        del model

        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, object_store_memory=256 * 2**20,
                 _temp_dir=str(tmp / "ray"), log_to_driver=False, configure_logging=False)
        try:
            for w in [int(x) for x in args.workers.split(",") if x.strip()]:
                s = ray_engine.ray_settings()
                t0 = time.perf_counter()
                ray_engine.run_predict_ray(opts(one, tmp / f"one{w}.jsonl", model_dir, args.batch_size),
                                           num_workers=w, settings=s)
                t_start = time.perf_counter() - t0
                t0 = time.perf_counter()
                res = ray_engine.run_predict_ray(opts(inputs, tmp / f"ray{w}.jsonl", model_dir, args.batch_size),
                                                 num_workers=w, settings=s)
                t_all = time.perf_counter() - t0
                same = [r["themes"] + r["measures"] for r in res.rows] == [r["themes"] + r["measures"] for r in local.rows]
                results.append((f"Ray, {w} worker(s)", t_all, t_start, res.clauses, same))
        finally:
            ray.shutdown()

        base = meta.get("base_model", {}).get("name", "?")
        print(f"model: {model_dir} (version {meta.get('version')}, base {base}, "
              f"max_length {meta.get('input', {}).get('max_length')})")
        print(f"inputs: {len(inputs)} documents ({args.copies} copies of the seed documents), {n} clauses; "
              f"batch size {args.batch_size}")
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
              f"torch {torch.__version__}, ray {ray.__version__}")
        print(f"load average (1 min) before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f}")
        print(f"{'run':44s} {'wall s':>8s} {'clauses/s':>10s} {'start-up s':>11s} {'steady clauses/s':>17s} same labels")
        for rec in results:
            name, t, t_start, m = rec[:4]
            same = rec[4] if len(rec) > 4 else None
            steady = m / (t - t_start) if t_start is not None and t > t_start else m / t
            print(f"{name:44s} {t:8.1f} {m / t:10.1f} {'' if t_start is None else f'{t_start:.1f}':>11s} "
                  f"{steady:17.1f} {'' if same is None else ('yes' if same else 'NO')}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
