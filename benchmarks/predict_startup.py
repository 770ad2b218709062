"""Start-up of `policytag predict` on one clause: wall time and peak memory, side by side.

    python benchmarks/predict_startup.py MODEL_DIR [--rounds 5]
        [--before-code DIR --before-model UNTRIMMED_MODEL_DIR] [--json out.json]

Each round runs, one after the other (interleaved, so a burst of load hits them alike),
``python -m policytag predict ONE.jsonl -m MODEL -o OUT.jsonl -q --no-summary`` under
``/usr/bin/time -v`` for:

* ``before``: ``--before-code`` (a checkout of the code before this change, e.g.
  ``git archive 91864f3 | tar -x -C DIR``) on ``--before-model`` (an untrimmed model) with
  its default runtime (PyTorch); skipped when not given;
* ``torch``: this code, ``--runtime torch`` on MODEL_DIR;
* ``default``: this code, the default runtime (``auto``: the fast runtime on a CPU).

It reports the minimum and median wall time and peak RSS per configuration, the ratios,
and the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLAUSE = {"clause_id": "c1", "text": "开展科普进校园活动，加大科普经费投入。", "context": "二、主要任务"}


def run_once(code: Path, model: Path, extra: list[str], work: Path) -> tuple[float, float]:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "policytag", "predict", str(work / "one.jsonl"),
           "-m", str(model), "-o", str(work / "out.jsonl"), "-q", "--no-summary", *extra]
    env = {**os.environ, "PYTHONPATH": str(code)}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work, timeout=900)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    rss = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1)) / 1024
    return wall, rss


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--before-code", type=Path, default=None)
    ap.add_argument("--before-model", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    la0 = os.getloadavg()
    print(f"load average at start: {la0[0]:.2f} {la0[1]:.2f} {la0[2]:.2f} (figures under load are slower and noisier)")
    configs = {}
    if args.before_code:
        configs["before"] = (args.before_code, args.before_model or args.model_dir, [])
    configs["torch"] = (ROOT, args.model_dir, ["--runtime", "torch"])
    configs["default"] = (ROOT, args.model_dir, [])
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in configs}
    with tempfile.TemporaryDirectory(prefix="policytag-startup-") as tmp:
        work = Path(tmp)
        (work / "one.jsonl").write_text(json.dumps(CLAUSE, ensure_ascii=False) + "\n", encoding="utf-8")
        for k, (code, model, extra) in configs.items():  # warm the page cache once
            run_once(code, model, extra, work)
        for r in range(args.rounds):
            for k, (code, model, extra) in configs.items():
                got[k].append(run_once(code, model, extra, work))
                print(f"round {r + 1}: {k}: {got[k][-1][0]:.2f} s, {got[k][-1][1]:.0f} MB", flush=True)
    la1 = os.getloadavg()
    res = {"load_average_start": la0[0], "load_average_end": la1[0], "rounds": args.rounds, "configs": {}}
    ref = None
    print("\n| one-clause `policytag predict` | code | model | wall s (min / median) | peak RSS MB (median) | vs before |")
    print("|---|---|---|---:|---:|---:|")
    for k, runs in got.items():
        walls = [w for w, _ in runs]
        rss = statistics.median(r for _, r in runs)
        mn, md = min(walls), statistics.median(walls)
        if ref is None:
            ref = md
        code, model, extra = configs[k]
        res["configs"][k] = {"code": str(code), "model": str(model), "args": extra, "wall_min_s": mn,
                             "wall_median_s": md, "peak_rss_mb": rss}
        print(f"| {k} {' '.join(extra)} | {code} | {model} | {mn:.2f} / {md:.2f} | {rss:.0f} | {md / ref:.0%} |")
    print(f"load average: {la0[0]:.2f} at start, {la1[0]:.2f} at end")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
