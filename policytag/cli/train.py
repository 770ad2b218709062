"""``policytag train`` and ``policytag evaluate``."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import List, Optional

import typer

from policytag.errors import PolicytagError


def _console():
    from rich.console import Console

    from policytag.training.distributed import is_main_process

    # under torchrun / accelerate launch only rank 0 prints
    return Console(stderr=False, quiet=not is_main_process())


def _overrides(config: str, backend, model, no_context, epochs, sets) -> dict:
    from policytag.config import load_config

    ov = list(sets or [])
    if backend:
        if backend not in ("transformer", "baseline"):
            raise PolicytagError(f"--backend must be transformer or baseline, got {backend!r}")
        ov.append(f"backend={backend}")
    if model:
        ov.append(f"model.base={model}")
    if no_context:
        ov.append("model.use_context=false")
    if epochs is not None:
        ov.append(f"training.epochs={epochs}")
    cfg = load_config(config, ov)
    # load_config keeps the parent's _source for configs that `extends:` another; record the one asked for
    from policytag import paths

    cfg["_source"] = str(paths.config_file(config))
    return cfg


def _print_metrics(console, systems: dict[str, dict]) -> None:
    from rich.table import Table

    t = Table(title="micro F1 / macro F1 / exact match")
    t.add_column("system")
    t.add_column("themes")
    t.add_column("measures")
    for name, m in systems.items():
        cell = lambda d: f"{d['micro_f1']:.3f} / {d['macro_f1']:.3f} / {d['exact_match']:.3f}"  # noqa: E731
        t.add_row(name, cell(m["themes"]), cell(m["measures"]))
    console.print(t)


def train_cmd(
    config: str = typer.Option("default", "--config", "-c", help="Config name (default, gpu, tiny) or YAML path."),
    data: Optional[Path] = typer.Option(None, "--data", help="Labeled clauses (JSON Lines). Default: labels/clauses.jsonl minus the test documents."),
    backend: Optional[str] = typer.Option(None, "--backend", help="transformer or baseline (TF-IDF + logistic regression)."),
    model: Optional[str] = typer.Option(None, "--model", help="Base model: bundled:multilingual-e5-small, a hub id or a local directory."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Model directory to write (default: $POLICYTAG_HOME/runs/<version>)."),
    cv: Optional[int] = typer.Option(None, "--cv", help="Run document-grouped K-fold cross-validation (transformer and baseline) instead of training one model."),
    context: str = typer.Option("both", "--cv-context", help="With --cv: evaluate with context, without, or both (on|off|both)."),
    cv_backends: str = typer.Option("transformer,baseline", "--cv-backends", help="With --cv: comma-separated backends."),
    no_context: bool = typer.Option(False, "--no-context", help="Feed the clause text only (model.use_context=false)."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Shortcut for --set training.epochs=N."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help="Config override key=value (repeatable), e.g. --set training.learning_rate=3e-5."),
    report_dir: Optional[Path] = typer.Option(None, "--report-dir", help="With --cv: where to write cv.json / cv.md / charts."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Train a model on the labeled clauses (or cross-validate with --cv K)."""
    from policytag import paths
    from policytag.training.trainer import training_clauses

    cfg = _overrides(config, backend, model, no_context, epochs, sets)
    clauses, excluded = training_clauses(cfg, data)
    console = _console()
    if cv:
        from policytag.training.crossval import cross_validate, system_variants
        from policytag.training.reports import cv_table, write_cv_report

        if context not in ("on", "off", "both"):
            raise PolicytagError("--cv-context must be on, off or both")
        backends = [b.strip() for b in cv_backends.split(",") if b.strip()]
        for b in backends:
            if b not in ("transformer", "baseline"):
                raise PolicytagError(f"--cv-backends: unknown backend {b!r} (transformer, baseline)")
        # cross-validation runs on the training documents only: the fixed test documents of
        # labels/splits.yaml never take part in choosing a recipe
        if excluded:
            console.print(f"cross-validation on {len(clauses)} clauses; the {len(excluded)} test documents are left out")
        result = cross_validate(clauses, system_variants(cfg, backends, context), cv, progress=not quiet)
        out = report_dir or paths.home() / "reports" / f"cv{cv}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        files = write_cv_report(result, out, command="policytag " + " ".join(sys.argv[1:]))
        console.print(cv_table(result))
        console.print(f"report: {files['markdown']}")
        return
    if excluded:
        console.print(f"training on {len(clauses)} clauses; test documents held out: {', '.join(excluded)}")
    from policytag.training.trainer import train

    run_dir = output
    if run_dir is None:
        run_dir = paths.home() / "runs" / f"{cfg.get('backend', 'transformer')}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    path = train(clauses, cfg, run_dir, progress=not quiet)
    from policytag.modeling.classifier import PolicyClassifier

    m = PolicyClassifier.from_pretrained(path)
    oof = (m.metadata.get("metrics") or {}).get("train_oof")
    if oof:
        _print_metrics(console, {"out-of-fold on training data": oof})
    console.print(f"model {m.version} ({m.backend}) written to {path}")
    from policytag.training.distributed import shutdown

    shutdown()  # torchrun: all ranks leave together (a rank outliving its peer can abort in gloo)


def evaluate_cmd(
    model_dir: Path = typer.Argument(..., help="A model directory written by `policytag train`."),
    data: Optional[Path] = typer.Option(None, "--data", help="Labeled clauses (JSON Lines). Default: the fixed test documents of labels/splits.yaml."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A baseline model directory to compare with (default: train one on the model's training data)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report directory (default: $POLICYTAG_HOME/reports/evaluate-<version>-<time>)."),
    context_ablation: bool = typer.Option(False, "--context-ablation", help="Also retrain the transformer recipe with the context switch flipped and show it."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Per-label and per-dimension metrics of a model, next to the TF-IDF baseline; JSON, Markdown and PNG charts."""
    from policytag.training.evaluation import evaluate_dir

    report = evaluate_dir(model_dir, data=data, baseline_dir=baseline, out_dir=out,
                          context_ablation=context_ablation, progress=not quiet)
    console = _console()
    for n in report["notes"]:
        console.print(n)
    _print_metrics(console, report["systems"])
    console.print(f"report: {report['files']['markdown']}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("evaluate")(evaluate_cmd)
