"""``policytag predict`` and ``policytag export-onnx``: thin wrappers over :mod:`.batch` and :mod:`.onnx_export`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

PREDICT_HELP = """Tag documents and clause files in batch, writing one row per clause (or provision).

INPUT is any mix of documents (.txt .md .docx .pdf .html ...), directories (searched
recursively), glob patterns (quote them: 'docs/**/*.pdf') and JSON Lines files of
pre-segmented clauses ({"clause_id", "text", "context"?, "doc_id"?}, tagged as given).
OUT is .jsonl, .csv or .xlsx by extension; OUT.summary.csv beside it counts theme x measure
per document. Bad files are reported and skipped; exit code 1 when any input was skipped.
Defaults come from configs/predict.yaml.
"""


def predict(
    inputs: List[str] = typer.Argument(..., metavar="INPUT...", help="Files, directories, glob patterns, clause .jsonl files."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file: .jsonl, .csv (UTF-8 with BOM) or .xlsx."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Model directory (default: the registry's production model)."),
    level: Optional[str] = typer.Option(None, "--level", help="clause | provision (provision labels are the union of its clauses)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Clauses per forward pass (default: configs/predict.yaml)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda (PyTorch runtime)."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="auto (default: the model's fast int8 runtime on a CPU, PyTorch on a GPU) | torch | onnx."),
    onnx_variant: Optional[str] = typer.Option(None, "--onnx-variant", help="int8 | fp32 (with --runtime onnx)."),
    summary: Optional[bool] = typer.Option(None, "--summary/--no-summary", help="Write OUT.summary.csv."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars (the final report is still printed)."),
    overrides: List[str] = typer.Option([], "--set", help="Override configs/predict.yaml: --set predict.batch_size=64"),
    engine: str = typer.Option("local", "--engine", help="local | ray (a Ray cluster; README 'Running on a cluster')."),
    address: Optional[str] = typer.Option(None, "--address", help="With --engine ray: the cluster to join (HOST:6379, ray://HOST:10001, auto); default: start one here."),
    num_workers: Optional[int] = typer.Option(None, "--num-workers", help="With --engine ray: model copies (default: one per GPU, else one per CPU)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="With --engine ray: write -o OUTDIR/ as parquet or jsonl shards (+ _summary.csv, _manifest.json)."),
) -> None:
    from policytag.serving import batch, tagging

    full_cfg = tagging.load_predict_config(overrides)
    cfg = dict(full_cfg.get("predict") or {})
    opts = batch.PredictOptions(
        inputs=inputs,
        output=str(output),
        model=str(model) if model else None,
        level=level or cfg["level"],
        batch_size=batch_size or cfg["batch_size"],
        device=device or cfg["device"],
        runtime=runtime or cfg["runtime"],
        onnx_variant=onnx_variant or cfg["onnx_variant"],
        onnx_threads=cfg["onnx_threads"],
        onnx_recheck_margin=cfg["onnx_recheck_margin"],
        onnx_batch_size=batch_size or cfg["onnx_batch_size"] or 0,  # an explicit --batch-size holds for both runtimes
        summary=cfg["summary"] if summary is None else summary,
        progress=not quiet,
        limits=dict(full_cfg.get("limits") or {}),
    )
    if engine == "ray":  # issue 8: same inputs and outputs on a Ray cluster (serving/ray_engine.py)
        from policytag.serving import ray_engine

        result = ray_engine.run_predict_ray(opts, address=address, num_workers=num_workers, fmt=fmt,
                                            settings=ray_engine.ray_settings(overrides))
        ray_engine.print_report(result, level=opts.level)
        raise typer.Exit(code=result.exit_code)
    if engine != "local":
        from policytag.errors import PolicytagError

        raise PolicytagError(f"--engine must be local or ray, got {engine!r}")
    if address is not None or num_workers is not None or fmt is not None:
        from policytag.errors import PolicytagError

        raise PolicytagError("--address, --num-workers and --format go with --engine ray")
    local = batch.run_predict(opts)
    batch.print_report(local, level=opts.level)
    raise typer.Exit(code=local.exit_code)


def export_onnx(
    model_dir: Path = typer.Argument(..., help="A transformer model directory written by `policytag train`."),
    output_dir: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write (default: MODEL_DIR/onnx)."),
    int8: Optional[bool] = typer.Option(None, "--int8/--no-int8", help="Also write the int8 model (the fast default)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare labels with PyTorch on the shipped clauses."),
    opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset (default: configs/predict.yaml)."),
    overrides: List[str] = typer.Option([], "--set", help="Override configs/predict.yaml: --set onnx.method=dynamic"),
) -> None:
    """(Re)write a model's fast CPU runtime, MODEL_DIR/onnx/ (fp32 + int8; `policytag train` already does)."""
    from rich.console import Console

    from policytag.modeling import onnx_runtime as onnx_export
    from policytag.serving import tagging

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    cfg = tagging.load_predict_config(overrides)
    settings = dict(cfg.get("onnx") or {})
    quantize = settings.get("quantize", True) if int8 is None else int8
    with console.status(f"exporting {model_dir} to ONNX"):
        res = onnx_export.export_onnx(model_dir, output_dir, opset=opset, quantize=quantize, check=check,
                                      settings=settings,
                                      recheck_margin=(cfg.get("predict") or {}).get("onnx_recheck_margin"))
    for variant, path in res.files.items():
        size = path.stat().st_size / 1e6
        line = f"wrote {path} ({variant}, {size:.1f} MB)"
        if variant in res.agreement:
            line += (f": same labels as PyTorch on {res.agreement[variant]:.1%} of {res.n_check} clauses, "
                     f"max probability difference {res.max_abs_diff[variant]:.4f}")
        console.print(line)
    if "int8+recheck" in res.agreement:
        console.print(f"int8 + fp32 re-check (the default runtime): same labels as PyTorch on "
                      f"{res.agreement['int8+recheck']:.1%} of {res.n_check} clauses "
                      f"({res.rechecked} re-checked in fp32)")
    used = "int8+recheck" if "int8+recheck" in res.agreement else "int8"
    low = {v: a for v, a in res.agreement.items() if a < 0.99 and v in ("fp32", used)}
    if low:
        console.print(f"[yellow]warning: label agreement below 99% for {', '.join(low)}; "
                      "prefer --onnx-variant fp32 or --runtime torch for this model[/]")
    if output_dir is None:
        console.print(f"`policytag predict INPUT... --model {model_dir} -o OUT.csv` now uses it on a CPU")


def register(app: typer.Typer) -> None:
    app.command("predict", help=PREDICT_HELP)(predict)
    app.command("export-onnx")(export_onnx)
