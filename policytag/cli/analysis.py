"""``policytag compare`` / ``agencies`` / ``targets``: analysis of tagged rows.

A thin layer over :mod:`policytag.analysis`: read the inputs (documents with a model,
predict outputs, or seed documents with ``--gold``), call the library, write the files,
print a short summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import typer

from policytag.analysis.inputs import InputSet, check_output, load_inputs, load_metadata
from policytag.errors import InputError
from policytag.serving.tagging import document_tagger, write_rows

INPUTS_HELP = ("Documents (.txt .docx .pdf .html), folders, or `policytag predict` outputs (.jsonl .csv .xlsx); "
               "with --gold: seed doc ids (kunshan-2023) or seed files.")


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _load(inputs: list[str], gold: bool, model: Optional[Path], progress: bool) -> list[InputSet]:
    console = _console()

    def skip(path: str, reason: str) -> None:
        console.print(f"[yellow]skipped[/yellow] {path}: {reason}", highlight=False, soft_wrap=True, markup=True)

    return load_inputs(inputs, gold=gold, tag_file=document_tagger(model, progress=progress), on_skip=skip)


def source_note(sets: list[InputSet]) -> str:
    """What the labels are: gold, or which model."""
    kinds = {s.kind for s in sets}
    versions = sorted({str(r.get("model_version")) for s in sets for r in s.rows if r.get("model_version")})
    if kinds == {"gold"}:
        return "gold 标注"
    if versions:
        return "模型 " + ", ".join(versions)
    return "gold 标注" if "gold" in kinds else "已标注条款"


def _all_rows(sets: list[InputSet]) -> list[dict]:
    seen, rows = set(), []
    for s in sets:
        for r in s.rows:
            key = (r.get("doc_id", ""), r.get("clause_id", ""))
            if key not in seen:
                seen.add(key)
                rows.append(r)
    return rows


def _report_written(console: Any, warnings: Sequence[str], out: Path, fig: Path | None) -> None:
    for w in warnings:
        console.print(f"[yellow]warning[/yellow]: {w}", highlight=False, soft_wrap=True)
    console.print(f"wrote {out}" + (f" and {fig}" if fig else ""), highlight=False, soft_wrap=True)


def compare_command(
    inputs: list[str] = typer.Argument(..., metavar="A B [C ...]", help=INPUTS_HELP),
    output: Path = typer.Option(..., "-o", "--output", help="Workbook to write (.xlsx)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also write the heat-map figure (.png or .svg)."),
    group_by: str = typer.Option("doc", "--group-by",
                                 help="doc (each document), input (each argument), or a metadata key: year, level, issuer, ..."),
    meta: Optional[Path] = typer.Option(None, "--meta", help="Document metadata (YAML/JSON, or CSV/TSV with doc_id or slug) for --group-by."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model directory for documents (default: the registry's production model)."),
    gold: bool = typer.Option(False, "--gold", help="Use the gold labels of seed documents instead of a model."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar while tagging."),
) -> None:
    """Compare the theme × measure mix of documents or groups of documents.

    Writes shares per document side by side, the difference (B − A, percentage points),
    the supply / environment / demand balance and every clause with its labels.
    """
    from rich.table import Table

    from policytag.analysis.compare import compare_documents, group_rows
    from policytag.analysis.compare_export import group_label, plot_comparison, write_comparison_xlsx

    out = check_output(output, inputs)
    fig = check_output(png, inputs, (".png", ".svg")) if png else None
    sets = _load(inputs, gold, model, progress)
    groups, labels = group_rows(sets, group_by, load_metadata(meta))
    comparison = compare_documents(groups, group_by=group_by, labels=labels)
    src = source_note(sets)
    write_comparison_xlsx(comparison, out, source=src)
    warnings = plot_comparison(comparison, fig, source=src) if fig else []
    console = _console()
    t = Table(title=f"policytag compare (by {group_by})")
    for col in ("group", "documents", "clauses", "supply %", "environment %", "demand %"):
        t.add_column(col, justify="left" if col in ("group", "documents") else "right", overflow="fold")
    fam = comparison.families
    for g in comparison.groups:
        share = {f: fam[(fam.group == g) & (fam.family == f)].measure_share.iloc[0] for f in fam.family.unique()}
        t.add_row(group_label(comparison, g), ", ".join(comparison.doc_ids[g]), str(comparison.n_clauses[g]),
                  *(f"{share.get(f, 0):.1f}" for f in ("supply", "environment", "demand")))
    console.print(t)
    ch = comparison.changes()
    tax = comparison.taxonomy
    zh = (lambda i: "无" if i == "(none)" else tax[i].zh)
    b, a = group_label(comparison, comparison.groups[1]), group_label(comparison, comparison.baseline)
    for title, part in ((f"largest growth {b} − {a}", ch.head(3)), (f"largest shrink {b} − {a}", ch.tail(3).iloc[::-1])):
        console.print(title + ": " + "; ".join(f"{zh(r.theme)}×{zh(r.measure)} {r.diff_pp:+.1f} pp"
                                              for r in part.itertuples()), highlight=False, soft_wrap=True)
    _report_written(console, warnings, out, fig)


def agencies_command(
    inputs: list[str] = typer.Argument(..., metavar="INPUT...", help=INPUTS_HELP),
    output: Path = typer.Option(..., "-o", "--output", help="Workbook to write (.xlsx)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also write an agency × measure heat map (.png or .svg)."),
    top: int = typer.Option(20, "--top", min=1, help="Agencies in the figure (by number of clauses)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model directory for documents."),
    gold: bool = typer.Option(False, "--gold", help="Use the gold labels of seed documents instead of a model."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar while tagging."),
) -> None:
    """Who does what: canonical agency names, lead / supporting roles, agency × measure and × theme counts."""
    from policytag.analysis.agencies import analyze_agencies
    from policytag.analysis.agencies_export import plot_agency_matrix, write_agencies_xlsx

    out = check_output(output, inputs)
    fig = check_output(png, inputs, (".png", ".svg")) if png else None
    sets = _load(inputs, gold, model, progress)
    rows = _all_rows(sets)
    analysis = analyze_agencies(rows)
    if not analysis.mentions:
        raise InputError("no responsible agencies found in these clauses (no 责任单位/牵头单位 notes); nothing to write")
    src = source_note(sets)
    write_agencies_xlsx(analysis, out, rows, source=src)
    warnings = plot_agency_matrix(analysis, fig, top=top, caption=f"{', '.join(analysis.doc_ids)}；{src}") if fig else []
    console = _console()
    console.print(f"{len(analysis.measures)} agencies in {len({(m.doc_id, m.clause_id) for m in analysis.mentions})} "
                  f"clauses of {len(analysis.by_doc_measures)} document(s)", highlight=False)
    console.print(analysis.roles.head(10).to_string(index=False), highlight=False, soft_wrap=True)
    _report_written(console, warnings, out, fig)


def targets_command(
    inputs: list[str] = typer.Argument(..., metavar="INPUT...", help=INPUTS_HELP),
    output: Path = typer.Option(..., "-o", "--output", help="Targets table to write (.xlsx, .csv or .jsonl)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also write an overview figure (.png or .svg)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model directory for documents."),
    gold: bool = typer.Option(False, "--gold", help="Use the gold labels of seed documents instead of a model."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar while tagging."),
) -> None:
    """Quantified targets: quantity, unit, indicator, comparator and deadline of every number a clause promises."""
    from policytag.analysis.targets import targets_from_rows
    from policytag.analysis.targets_export import plot_targets, write_targets_xlsx

    out = check_output(output, inputs, (".xlsx", ".csv", ".jsonl"))
    fig = check_output(png, inputs, (".png", ".svg")) if png else None
    sets = _load(inputs, gold, model, progress)
    rows = _all_rows(sets)
    targets = targets_from_rows(rows)
    src = source_note(sets)
    if out.suffix.lower() == ".xlsx":
        write_targets_xlsx(targets, out, rows, source=src)
    else:
        write_rows([t.to_dict() for t in targets], out)
    warnings = plot_targets(targets, fig, caption=src, doc_ids=[r.get("doc_id", "") for r in rows]) if fig else []
    console = _console()
    console.print(f"{len(targets)} quantified targets in {len({(t.doc_id, t.clause_id) for t in targets})} of "
                  f"{len(rows)} clauses", highlight=False)
    for t in targets[:8]:
        console.print(f"  {t.doc_id}  {t.indicator}  {t.text}  {t.deadline or ''}", highlight=False, soft_wrap=True)
    _report_written(console, warnings, out, fig)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
    app.command("agencies")(agencies_command)
    app.command("targets")(targets_command)
