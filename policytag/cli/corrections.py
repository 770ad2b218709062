"""Commands of the correction loop: ``corrections``, ``models``, ``retrain``, ``review-queue``.

Each command is a thin layer over :mod:`policytag.data.corrections`, :mod:`policytag.modeling.registry`
and :mod:`policytag.training.retrain`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from policytag.errors import InputError, ModelNotFoundError, PolicytagError

corrections_app = typer.Typer(help="Label corrections: list, export to JSONL/CSV/XLSX, import a corrected file.",
                              no_args_is_help=True)
models_app = typer.Typer(help="Model versions: list, show, promote, roll back.", no_args_is_help=True)


def _console():
    from rich.console import Console

    return Console()


def _short(s: str, n: int = 48) -> str:
    s = (s or "").replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def _fmt(x) -> str:
    return "" if x is None else (f"{x:.4f}" if isinstance(x, float) else str(x))


# --------------------------------------------------------------------------- corrections

@corrections_app.command("list")
def corrections_list(
    all_rows: bool = typer.Option(False, "--all", help="Every correction ever saved (default: the latest per clause)."),
    contains: Optional[str] = typer.Option(None, "--text", help="Only clauses whose text contains this."),
    limit: int = typer.Option(50, "--limit", "-n", help="Show at most this many (the newest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON Lines instead of a table."),
) -> None:
    """List saved corrections (newest last)."""
    from policytag.data.corrections import CorrectionStore

    store = CorrectionStore()
    recs = store.records(latest_only=not all_rows, contains=contains, limit=limit if limit > 0 else None)
    if as_json:
        for r in recs:
            typer.echo(json.dumps(r, ensure_ascii=False))
        return
    from rich.table import Table

    total = store.count(distinct=not all_rows)
    t = Table(title=f"{len(recs)} of {total} {'corrections' if all_rows else 'corrected clauses'} ({store.path})")
    for col in ("id", "time (UTC)", "doc", "text", "themes", "measures", "was", "by"):
        t.add_column(col, overflow="fold")
    for r in recs:
        was = None
        if r.get("predicted_themes") is not None or r.get("predicted_measures") is not None:
            was = ", ".join((r.get("predicted_themes") or []) + (r.get("predicted_measures") or [])) or "—"
        t.add_row(str(r["id"]), r["created_at"][:16].replace("T", " "), _short(r["doc_id"], 16), _short(r["text"]),
                  ", ".join(r["themes"]) or "—", ", ".join(r["measures"]) or "—", was or "", r.get("annotator") or "")
    _console().print(t)


@corrections_app.command("export")
def corrections_export(
    output: Path = typer.Option(..., "--output", "-o", help="Output file: .jsonl, .csv or .xlsx."),
    all_rows: bool = typer.Option(False, "--all", help="Export the full history (default: the latest per clause)."),
) -> None:
    """Export corrections to JSONL, CSV or XLSX (re-importable with `corrections import`)."""
    from policytag.data.corrections import CorrectionStore, export_corrections
    from policytag.fileio import check_writable

    store = CorrectionStore()
    check_writable(output)
    n = export_corrections(store, output, latest_only=not all_rows)
    typer.echo(f"wrote {n} corrections to {output}")


def _model_dir_arg(model: str | None) -> Path | None:
    """A model given as a directory or a registry version id; None when not given."""
    if model is None:
        return None
    p = Path(model)
    if p.exists():
        return p
    from policytag.modeling.registry import ModelRegistry

    return ModelRegistry().path(model)


def _thresholds_of(model_dir: Path) -> dict[str, float]:
    meta_file = Path(model_dir) / "policytag.json"
    if not meta_file.exists():
        raise ModelNotFoundError(f"{model_dir} is not a model directory (no policytag.json)")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    th = meta.get("thresholds") or {}
    if isinstance(th, list):
        th = dict(zip(meta.get("label_ids") or [], th))
    return {str(k): float(v) for k, v in th.items()}


def threshold_source(model: str | None = None):
    """``model_version -> {label: threshold}`` for an import: the given model, else the registry's version."""
    fixed = _model_dir_arg(model)
    if fixed is not None:
        th = _thresholds_of(fixed)
        return lambda version: th
    from policytag.modeling.registry import ModelRegistry

    reg = ModelRegistry()
    cache: dict = {}

    def lookup(version):
        if version not in cache:
            p = reg.find_by_model_version(version)
            cache[version] = _thresholds_of(p) if p is not None else None
        return cache[version]

    return lookup


@corrections_app.command("import")
def corrections_import(
    file: Path = typer.Argument(..., help="A .xlsx/.csv/.jsonl file with text, themes, measures columns "
                                          "(e.g. `policytag predict -o x.xlsx`, edited)."),
    annotator: Optional[str] = typer.Option(None, "--annotator", "-a", help="Who made these corrections."),
    model: Optional[str] = typer.Option(None, "--model", help="The model (directory or version) that produced the "
                                        "p_* columns; default: the registered version named in model_version."),
    all_rows: bool = typer.Option(False, "--all-rows", help="Import every row as a correction, even rows equal to the prediction."),
    strict: bool = typer.Option(False, "--strict", help="Write nothing if any row is rejected."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report only; write nothing."),
    note: Optional[str] = typer.Option(None, "--note", help="A note stored with every imported correction."),
) -> None:
    """Import corrected labels. Bad rows are rejected with their row number; the good rows are
    written in one transaction. Rows whose labels equal the model's prediction are skipped.
    Exit code 1 when a row was rejected."""
    from policytag.data.corrections import CorrectionStore, import_corrections

    rep = import_corrections(CorrectionStore(), file, annotator=annotator, thresholds=threshold_source(model),
                             all_rows=all_rows, strict=strict, dry_run=dry_run, note=note)
    typer.echo(rep.summary())
    if strict and rep.rejected and not dry_run:
        typer.secho("--strict: nothing was written; fix the rejected rows and import again", fg="yellow", err=True)
    if rep.rejected:
        raise typer.Exit(1)


@corrections_app.command("add")
def corrections_add(
    text: str = typer.Argument(..., help="The clause text."),
    themes: str = typer.Option("", "--themes", "-t", help="Theme ids, comma-separated ('' for none)."),
    measures: str = typer.Option("", "--measures", "-m", help="Measure ids, comma-separated ('' for none)."),
    context: str = typer.Option("", "--context", help="The heading path of the clause."),
    doc_id: str = typer.Option("", "--doc-id"),
    clause_id: str = typer.Option("", "--clause-id"),
    annotator: Optional[str] = typer.Option(None, "--annotator", "-a"),
    note: Optional[str] = typer.Option(None, "--note"),
) -> None:
    """Save one correction from the command line."""
    from policytag.data.corrections import CorrectionStore

    store = CorrectionStore()
    before = store.max_id()
    rid = store.add({"text": text, "context": context, "doc_id": doc_id, "clause_id": clause_id},
                    themes, measures, annotator=annotator, note=note)
    typer.echo(f"saved correction {rid}" if rid > before else f"unchanged: correction {rid} already has these labels")


@corrections_app.command("history")
def corrections_history(text: str = typer.Argument(..., help="The clause text.")) -> None:
    """Every correction ever saved for one clause, oldest first."""
    from policytag.data.corrections import CorrectionStore

    rows = CorrectionStore().history(text)
    if not rows:
        typer.echo("no corrections for this clause")
    for r in rows:
        typer.echo(f"{r['id']}\t{r['created_at']}\tthemes={','.join(r['themes']) or '—'}\t"
                   f"measures={','.join(r['measures']) or '—'}\t{r.get('annotator') or ''}\t{r.get('note') or ''}")


# --------------------------------------------------------------------------- models

@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List model versions (production marked)."""
    from policytag.modeling.registry import ModelRegistry
    from policytag.training.retrain import MAIN_METRIC

    reg = ModelRegistry()
    vs = reg.versions()
    if as_json:
        typer.echo(json.dumps(vs, ensure_ascii=False, indent=2))
        return
    if not vs:
        typer.echo(f"no model versions in {reg.root}; run `policytag retrain` to train the first one")
        return
    from rich.table import Table

    t = Table(title=f"model versions in {reg.root}")
    t.add_column("version", no_wrap=True)
    t.add_column("status", no_wrap=True)
    for col in ("parent", "created (UTC)", "corrections", MAIN_METRIC, "change", "data hash"):
        t.add_column(col)
    for v in vs:
        main = v.get("main_metric", (v.get("metrics") or {}).get(MAIN_METRIC))
        delta = v.get("delta")
        t.add_row(v["version"], ("[bold green]production[/]" if v["status"] == "production" else v["status"]),
                  v.get("parent") or "—", (v.get("created_at") or "")[:16].replace("T", " "),
                  str(v.get("corrections", 0)), _fmt(main), "" if delta is None else f"{delta:+.4f}",
                  (v.get("data_hash") or "")[:8])
    _console().print(t)


@models_app.command("show")
def models_show(version: str = typer.Argument("production", help="Version id (or prefix, 'production', 'latest').")) -> None:
    """Show one version: parent, data hash, corrections, metrics, time, path."""
    from policytag.modeling.registry import ModelRegistry

    v = ModelRegistry().get(version)
    typer.echo(json.dumps(v, ensure_ascii=False, indent=2))


@models_app.command("promote")
def models_promote(version: str = typer.Argument(..., help="Version id or unique prefix.")) -> None:
    """Make a version the production model (atomic)."""
    from policytag.modeling.registry import ModelRegistry

    vid = ModelRegistry().promote(version)
    typer.echo(f"{vid} is now in production")


@models_app.command("rollback")
def models_rollback() -> None:
    """Put the previous production version back into production."""
    from policytag.modeling.registry import ModelRegistry

    reg = ModelRegistry()
    cur = reg.production_version()
    prev = reg.rollback()
    typer.echo(f"rolled back from {cur} to {prev}; {prev} is now in production")


# --------------------------------------------------------------------------- retrain, review-queue

def retrain_cmd(
    config: str = typer.Option("default", "--config", "-c", help="Config name (configs/NAME.yaml) or YAML path."),
    overrides: list[str] = typer.Option([], "--set", help="Config override section.key=value (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Promote even when the new version is worse."),
    no_promote: bool = typer.Option(False, "--no-promote", help="Train and compare only; keep as candidate."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a new model version on gold labels + corrections; promote it if it is not worse
    than production on the test documents (mean of theme and measure micro-F1)."""
    from policytag.training.retrain import retrain

    con = _console()

    def on_progress(stage: str, frac: float, msg: str) -> None:
        if stage != "train" or frac in (0.05, 0.8):
            con.print(f"[dim]{frac:4.0%}[/] {stage}: {msg}")

    res = retrain(config, overrides, force=force, progress=True, on_progress=on_progress, promote=not no_promote)
    if as_json:
        typer.echo(json.dumps(res.to_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(res.summary())


def _expand(inputs: list[Path]):
    """The files behind the inputs (files, folders recursively, patterns): the expansion
    ``predict`` and ``segment`` use. Failures are reported here; none is fatal."""
    from policytag.text.inputs import expand_inputs

    files, skips = expand_inputs([str(p) for p in inputs], clauses=True)
    for s in skips:
        if s.failed:
            typer.secho(f"skipped {s.path}: {s.reason}", fg="yellow", err=True)
    return files, sum(1 for s in skips if s.failed)


def _load_inputs(files, skipped: int = 0):
    from policytag.clause import load_clauses

    clauses = []
    for f in files:
        try:
            if f.kind == "clauses":
                clauses += load_clauses(f.path)
            else:
                from policytag.text.segmentation import segment_file

                _, cs = segment_file(f.path)
                clauses += cs
        except PolicytagError as e:  # one unreadable file does not stop the others
            skipped += 1
            typer.secho(f"skipped {f.path}: {e}", fg="yellow", err=True)
    if not clauses:
        raise InputError("no clauses in the given inputs" + (f" ({skipped} file(s) skipped)" if skipped else ""))
    return clauses


def review_queue_cmd(
    inputs: list[Path] = typer.Argument(..., help="Documents (.txt/.docx/.pdf/.html, or a folder) or a clause .jsonl."),
    model: Optional[str] = typer.Option(None, "--model", help="Model directory or version (default: production)."),
    n: int = typer.Option(50, "--n", "-n", help="How many clauses to list."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the queue (.jsonl/.csv/.xlsx); "
                                          "fix themes/measures and `policytag corrections import` it."),
    include_corrected: bool = typer.Option(False, "--include-corrected", help="Keep clauses already corrected."),
) -> None:
    """List the clauses whose predictions are least certain (closest to a threshold)."""
    from policytag.data.corrections import CorrectionStore
    from policytag.modeling.registry import ModelRegistry
    from policytag.training.retrain import review_queue
    from policytag.serving.tagging import load_model

    from policytag.fileio import check_not_an_input, check_writable

    files, skipped = _expand(inputs)
    if output is not None:  # before the model is loaded and anything is written
        check_not_an_input(output, [f.path for f in files])
        check_writable(output)
    model_dir = _model_dir_arg(model) or ModelRegistry().production()
    if model_dir is None:
        raise ModelNotFoundError("no --model given and no production model; run `policytag retrain` first")
    clf = load_model(model_dir)  # the fast runtime on a CPU (predict.runtime: auto)
    clauses = _load_inputs(files, skipped)
    rows = review_queue(clf, clauses, n, exclude=None if include_corrected else CorrectionStore(), progress=True)
    from rich.table import Table

    t = Table(title=f"{len(rows)} least certain of {len(clauses)} clauses (model {clf.version})")
    for col in ("#", "margin", "nearest label", "p / thr", "doc", "text", "predicted"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(str(r["rank"]), f"{r['margin']:.3f}", r["nearest_label"], f"{r['nearest_p']:.2f}/{r['threshold']:.2f}",
                  _short(r["doc_id"], 16), _short(r["text"], 60), ", ".join(r["themes"] + r["measures"]) or "—")
    _console().print(t)
    if output is not None:
        from policytag.serving.tagging import write_rows

        write_rows(rows, output)
        typer.echo(f"wrote {len(rows)} rows to {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(corrections_app, name="corrections")
    app.add_typer(models_app, name="models")
    app.command("retrain")(retrain_cmd)
    app.command("review-queue")(review_queue_cmd)
