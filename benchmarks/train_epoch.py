"""Training time per epoch and peak memory for a training config on this machine.

    python benchmarks/train_epoch.py                      # default config (bundled e5-small, top 2 blocks)
    python benchmarks/train_epoch.py --set model.train_layers=null   # full fine-tuning, for comparison
    python benchmarks/train_epoch.py --config tiny

Data: labels/clauses.jsonl (all documents) when it exists, else tests/fixtures/mini_gold.jsonl.
Prints which base model produced the figures. One epoch, no threshold folds, nothing saved.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="default")
    ap.add_argument("--data", default=None)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    os.environ.setdefault("POLICYTAG_HOME", str(ROOT / "var"))

    import torch

    from policytag import paths
    from policytag.config import load_config
    from policytag.data import dataset as D
    from policytag.training.trainer import _HIDDEN_MEMO, fit_classifier, resolve_base

    data = args.data or (paths.GOLD_FILE if paths.GOLD_FILE.exists() else ROOT / "tests/fixtures/mini_gold.jsonl")
    clauses = D.load_gold(data)
    cfg = load_config(args.config, [f"training.epochs={args.epochs}", "thresholds.inner_folds=0", *args.sets])
    t0 = time.time()
    base, prov = resolve_base(cfg["model"]["base"])
    t_base = time.time() - t0
    peak = [rss_mb()]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    _HIDDEN_MEMO.update(key=None, items={})
    t1 = time.time()
    clf = fit_classifier(clauses, D.label_matrix(clauses), cfg, progress=False)
    total = time.time() - t1
    stop.set()
    tr = clf.metadata["training"]
    train_s = tr["seconds"]
    print(f"base model        : {prov.get('name')} ({prov.get('source') or ''})")
    if prov.get("approximation"):
        print("                    4-bit approximation of", prov.get("original"))
    print(f"config            : {args.config} {' '.join(args.sets)}")
    print(f"data              : {data} ({len(clauses)} clauses)")
    print(f"machine           : {os.cpu_count()} CPU(s), torch {torch.__version__}, threads {torch.get_num_threads()},"
          f" device {tr['device']}")
    print(f"trained layers    : {tr['trained_layers']}; trainable params {tr['trainable_params']:,}"
          f" of {tr['total_params']:,}")
    print(f"base ready in     : {t_base:.1f}s (materialized once into the cache)")
    print(f"fit, all included : {total:.1f}s (load base, tokenize"
          f"{', encode frozen blocks once' if tr['cached_frozen_layers'] else ''}, train)")
    print(f"training loop     : {train_s / max(args.epochs, 1e-9):.1f}s per epoch ({tr['steps']} steps in {train_s:.1f}s)")
    print(f"peak memory (RSS) : {max(peak[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024):.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
