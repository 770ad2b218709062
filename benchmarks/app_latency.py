"""Web app latency, click to rendered, with a breakdown of where the time goes (CPU).

    python benchmarks/app_latency.py --tiny               # tiny test model (trained in seconds)
    python benchmarks/app_latency.py --model MODEL_DIR    # any model directory
    python benchmarks/app_latency.py                      # the registry's production model
    python benchmarks/app_latency.py --quick-train        # none yet: the default architecture, 1 epoch

The document is the seed documents concatenated and cut to ``--chars`` characters
(20 000 by default: about 12 pages). Printed, each the median of ``--repeats`` runs after
one warm-up:

  stages (in-process, what one click costs on the server):
    segment          reading + clause segmentation
    model            tag_clauses over all clauses (the model's share)
    overlay          corrections shown on the rows (one store read)
    render_doc       highlighted document HTML
    render_table     clause table (pandas)
    heatmap          matrix + heat-map HTML + family bars
    export_xlsx      writing the XLSX download (now only when the user asks for it)
    export_all       all six downloads (what every click used to write)
    payload          bytes of the final page update (Gradio JSON), and of each partial one
  end to end (headless chromium, when installed):
    progress_line    click on 标注 -> the Chinese progress line (正在标注 k/n 条…)
    first_clauses    click on 标注 -> the first highlighted clauses
    complete         click on 标注 -> every clause highlighted and the summary shown
  api: gradio_client /tag_text round trip.

It prints the model, the machine's load average and the figures; nothing is asserted.

Measured (``--tiny --repeats 3``, 2 shared CPU cores at load average 7-9, 299 clauses):
segment 43 ms, model 240 ms, overlay 14 ms, document HTML 11 ms, table 7 ms, heat map 7 ms,
payload 306 kB; progress line 0.20 s, first clauses 0.69 s, complete 1.64 s after the click.
Writing the six downloads took 1.35 s (0.31 s for the XLSX alone): the app used to write
five of them on every click, it now writes one when the user asks for it.
"""

from __future__ import annotations

import argparse
import json
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


def tiny_model(cache: Path) -> Path:
    """The tiny transformer of the tests (configs/tiny.yaml on tests/fixtures/mini_gold.jsonl)."""
    from policytag.clause import load_clauses
    from policytag.config import load_config
    from policytag.training.trainer import train

    out = cache / "bench-app-tiny-model"
    if not (out / "policytag.json").exists():
        gold = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mini_gold.jsonl"
        print(f"[bench] training the tiny test model into {out} ...", flush=True)
        train(load_clauses(gold), load_config("tiny", ["backend=transformer"]), out, progress=False)
    return out


def resolve_model(args) -> Path:
    from policytag import paths
    from policytag.modeling.registry import ModelRegistry

    if args.model:
        return Path(args.model)
    if args.tiny:
        return tiny_model(paths.cache_dir())
    prod = ModelRegistry().production()
    if prod is not None:
        return Path(prod)
    if not args.quick_train:
        sys.exit("no --model and no production model in the registry; pass --tiny, --quick-train or --model DIR")
    out = paths.cache_dir() / "bench-app-latency-model"
    if not (out / "policytag.json").exists():  # the default architecture, 1 epoch: latency depends on it, not on accuracy
        from policytag.config import load_config
        from policytag.data.dataset import load_gold
        from policytag.training.trainer import train

        print(f"[bench] training the default architecture for 1 epoch into {out} (timing only) ...", flush=True)
        train(load_gold(), load_config("default", ["training.epochs=1", "thresholds.inner_folds=0"]), out, progress=False)
    return out


def document(chars: int) -> str:
    from policytag import paths

    parts, n = [], 0
    for p in sorted(paths.SOURCES_DIR.glob("*.txt")):
        t = p.read_text(encoding="utf-8")
        parts.append(t)
        n += len(t)
        if n >= chars:
            break
    return "\n\n".join(parts)[:chars]


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:8.0f} ms" if xs else "       —"


def stages(svc, text: str) -> dict[str, float]:
    """One click's server work, stage by stage."""
    from policytag.data.records import ClauseRow
    from policytag.serving import exports, render
    from policytag.serving.tagging import tag_clauses
    from policytag.serving.workbench import TagResult, Workspace
    from policytag.serving.documents import doc_meta

    tax = svc.taxonomy
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    doc = svc.read_text(text, name="bench")
    clauses = svc.segment(doc, "bench")
    out["segment"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    raw = tag_clauses(svc.model, clauses)
    out["model"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = svc.overlay_corrections([ClauseRow.from_dict(r) for r in raw])
    out["overlay"] = time.perf_counter() - t0
    ws = Workspace([TagResult(doc.doc_id, "bench", doc.text, rows, svc.version, 0.0, meta=doc_meta(doc.text, "bench"),
                              total=len(rows))])
    t0 = time.perf_counter()
    page = render.legend_html(tax, "themes", rows) + render.document_html(doc.text, rows, tax)
    out["render_doc"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = render.clause_table(rows, tax)
    out["render_table"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    heat = render.heatmap_html(svc.heatmap(rows), tax) + render.families_html(svc.family_counts(rows), tax)
    out["heatmap"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    svc.export(ws, "xlsx")
    out["export_xlsx"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for fmt in exports.FORMATS:
        svc.export(ws, fmt)
    out["export_all"] = time.perf_counter() - t0
    out["payload_kb"] = (len(page) + len(heat) + len(json.dumps(table.values.tolist(), ensure_ascii=False))) / 1024
    out["n_clauses"] = len(rows)
    return out


def browser_round(page, url: str, text: str, n: int) -> tuple[float, float, float]:
    """(progress line, first highlighted clauses, complete) seconds after the click on 标注."""
    page.goto(url)
    page.wait_for_selector("#pt-text textarea")
    page.wait_for_selector(".pt-badge-inner")  # the page's own load events are done: time the click only
    page.fill("#pt-text textarea", text)
    page.evaluate("""() => { window.__pt = {}; const t0 = performance.now();
      new MutationObserver(() => {
        const m = document.querySelector('#pt-input-msg'), t = performance.now() - t0;
        if (!window.__pt.progress && m && m.innerText.includes('正在')) window.__pt.progress = t;
        if (!window.__pt.first && document.querySelector('#pt-doc .pt-clause')) window.__pt.first = t;
      }).observe(document.body, {subtree: true, childList: true, characterData: true});
      document.querySelector('#pt-tag-btn').click(); }""")
    t0 = time.perf_counter()
    page.wait_for_function("n => document.querySelectorAll('#pt-doc .pt-clause').length === n && "
                           "document.querySelector('#pt-summary').innerText.includes('个有标签')",
                           arg=n, polling="raf", timeout=600_000)
    done = time.perf_counter() - t0
    marks = page.evaluate("window.__pt")
    return (marks.get("progress") or float("nan")) / 1000, (marks.get("first") or float("nan")) / 1000, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model directory (default: the registry's production model)")
    ap.add_argument("--tiny", action="store_true", help="the tiny test model (trained on first use)")
    ap.add_argument("--quick-train", action="store_true",
                    help="no model yet: train the default architecture for 1 epoch (timing only)")
    ap.add_argument("--chars", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()

    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the figure is for CPU
    import torch

    from policytag.data.corrections import CorrectionStore
    from policytag.serving.app import build_app, launch_options, load_app_config

    text = document(args.chars)
    model_dir = resolve_model(args)
    cfg = load_app_config()
    tmp = Path(tempfile.mkdtemp(prefix="policytag-bench-"))
    demo = build_app(model_dir, store=CorrectionStore(tmp / "c.sqlite"), config=cfg)
    svc = demo.policytag_service
    info = svc.model_info()
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            **launch_options(cfg))
    print(f"model:     {info['version']} ({info['backend']}, base {info['base_model']}) from {model_dir}")
    print(f"machine:   CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, torch threads "
          f"{torch.get_num_threads()}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"document:  {len(text):,} characters (seed documents concatenated)", flush=True)
    try:
        run(args, svc, url, text)
    finally:
        demo.close()
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, svc, url: str, text: str) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    pw = browser = page = None
    if not args.no_browser and Path(chromium).exists():
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
    acc: dict[str, list[float]] = {}
    n = 0
    for i in range(args.repeats + 1):  # round 0 warms up and is not counted
        st = stages(svc, text)
        n = int(st.pop("n_clauses"))
        t0 = time.perf_counter()
        assert client.predict(text, api_name="/tag_text")["n_clauses"] == n
        st["api"] = time.perf_counter() - t0
        if page is not None:
            st["progress_line"], st["first_clauses"], st["complete"] = browser_round(page, url, text, n)
        if i:
            for k, v in st.items():
                acc.setdefault(k, []).append(v)
        print(f"  round {i}{' (warm-up)' if not i else ''}: " + ", ".join(
            f"{k} {v:.2f}" for k, v in st.items()) + f", load {os.getloadavg()[0]:.1f}", flush=True)
    if browser is not None:
        browser.close()
        pw.stop()
    print(f"clauses:   {n}")
    for k in ("segment", "model", "overlay", "render_doc", "render_table", "heatmap", "export_xlsx", "export_all"):
        print(f"  {k:14s}{med(acc[k])}")
    print(f"  {'payload':14s}{statistics.median(acc['payload_kb']):8.0f} kB (final page update: document, table, heat map)")
    print(f"  {'api':14s}{med(acc['api'])}  (gradio_client /tag_text round trip)")
    if "complete" in acc:
        print(f"  {'progress_line':14s}{med(acc['progress_line'])}  (click -> 正在标注 k/n 条… shown)")
        print(f"  {'first_clauses':14s}{med(acc['first_clauses'])}  (click -> first highlighted clauses)")
        print(f"  {'complete':14s}{med(acc['complete'])}  (click -> all {n} clauses highlighted + summary)")
    else:
        print("  browser:      skipped (no chromium; `apt-get install -y chromium`)")


if __name__ == "__main__":
    main()
