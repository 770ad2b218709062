"""Web app latency: time from "标注" (submit) to the rendered result, longest seed document, CPU.

    python benchmarks/app_latency.py                      # the registry's production model
    python benchmarks/app_latency.py --model MODEL_DIR    # any model directory
    python benchmarks/app_latency.py --quick-train        # no model yet: train the default
        # architecture (bundled e5-small) for 1 epoch, for timing only (latency does not
        # depend on how well a model is trained, only on its architecture)

Three figures, each the median of ``--repeats`` runs after one warm-up:
  - browser:  click on 标注 in headless chromium (Playwright) until the highlighted document
              with every clause and the summary are on the page (skipped without chromium);
  - api:      ``gradio_client`` ``/tag_text`` round trip (JSON answer, no rendering);
  - engine:   the app's own segment + tag call in-process (no HTTP, no rendering).
It prints the model it used. Figures are for this machine only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resolve_model(args) -> Path:
    from policytag import paths
    from policytag.modeling.registry import ModelRegistry

    if args.model:
        return Path(args.model)
    prod = ModelRegistry().production()
    if prod is not None:
        return Path(prod)
    if not args.quick_train:
        sys.exit("no --model and no production model in the registry; train one (`policytag retrain`) "
                 "or pass --quick-train to time the default architecture trained for 1 epoch")
    out = paths.cache_dir() / "bench-app-latency-model"
    if not (out / "policytag.json").exists():
        from policytag.config import load_config
        from policytag.data.dataset import load_gold
        from policytag.training.trainer import train

        print(f"[bench] training the default architecture for 1 epoch into {out} (timing only) ...", flush=True)
        cfg = load_config("default", ["training.epochs=1", "thresholds.inner_folds=0"])
        train(load_gold(), cfg, out, progress=False)
    return out


def median(xs: list[float]) -> str:
    return f"{statistics.median(xs):6.2f} s (min {min(xs):.2f}, max {max(xs):.2f}, n={len(xs)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model directory (default: the registry's production model)")
    ap.add_argument("--doc", help="document to tag (default: the longest seed document)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick-train", action="store_true", help="train the default architecture 1 epoch if no model")
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()

    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the figure is for CPU
    import torch

    from policytag import paths
    from policytag.data.corrections import CorrectionStore
    from policytag.serving.app import build_app, launch_options, load_app_config

    doc = Path(args.doc) if args.doc else max(paths.SOURCES_DIR.glob("*.txt"), key=lambda p: p.stat().st_size)
    text = doc.read_text(encoding="utf-8")
    model_dir = resolve_model(args)
    cfg = load_app_config()
    tmp = Path(tempfile.mkdtemp(prefix="policytag-bench-"))
    demo = build_app(model_dir, store=CorrectionStore(tmp / "c.sqlite"), config=cfg)
    svc = demo.policytag_service
    info = svc.model_info()
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            **launch_options(cfg))
    print(f"model:     {info['version']} ({info['backend']}, base {info['base_model']}) from {model_dir}")
    print(f"device:    CPU, {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} (other work slows every figure)")
    print(f"document:  {doc.name}: {len(text):,} characters", flush=True)
    try:
        from gradio_client import Client

        client = Client(url, verbose=False)
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        use_browser = not args.no_browser and Path(chromium).exists()
        page = browser = pw = None
        if use_browser:
            from playwright.sync_api import sync_playwright

            pw = sync_playwright().start()
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1200})
        eng, api, web = [], [], []
        n = None
        # the three measurements are interleaved, so that load from other work hits them alike
        for i in range(args.repeats + 1):  # round 0 warms up and is not counted
            t0 = time.perf_counter()
            res = svc.tag(svc.read_text(text))
            t_eng = time.perf_counter() - t0
            n = len(res.rows)
            t0 = time.perf_counter()
            out = client.predict(text, api_name="/tag_text")
            t_api = time.perf_counter() - t0
            assert out["n_clauses"] == n
            t_web = None
            if page is not None:
                page.goto(url)
                page.wait_for_selector("#pt-text textarea")
                page.fill("#pt-text textarea", text)
                t0 = time.perf_counter()
                page.click("#pt-tag-btn")
                page.wait_for_function(
                    "n => document.querySelectorAll('#pt-doc .pt-clause').length === n && "
                    "document.querySelector('#pt-summary').innerText.includes('个有标签')",
                    arg=n, polling="raf", timeout=600_000)
                t_web = time.perf_counter() - t0
            if i:
                eng.append(t_eng)
                api.append(t_api)
                if t_web is not None:
                    web.append(t_web)
            print(f"  round {i}{' (warm-up)' if not i else ''}: engine {t_eng:.2f} s, api {t_api:.2f} s"
                  + (f", browser {t_web:.2f} s" if t_web is not None else "")
                  + f", load {os.getloadavg()[0]:.1f}", flush=True)
        if browser is not None:
            browser.close()
            pw.stop()
        print(f"clauses:   {n}")
        print(f"browser:   {median(web)}  (click 标注 -> {n} highlighted clauses + summary on the page)" if web
              else "browser:   skipped (no chromium; `apt-get install -y chromium`)")
        print(f"api:       {median(api)}  (gradio_client /tag_text round trip)")
        print(f"engine:    {median(eng)}  (segment + tag in-process, no HTTP, no rendering)")
    finally:
        demo.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
