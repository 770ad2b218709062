"""``policytag segment``: documents -> clause JSON Lines (LABELING.md section 5, no labels)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import typer

from policytag.clause import Clause, atomic_write_text
from policytag.errors import InputError, PolicytagError


@dataclass
class SegmentResult:
    """The outcome of segmenting a batch: per-document rows and the files skipped."""

    clauses: list[Clause] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)  # one per document read
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def failed(self) -> bool:
        return bool(self.skipped)


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files from the given files and directories (recursively, supported types only,
    hidden files ignored); paths that do not exist are reported, not fatal."""
    from policytag.text.ingestion import SUPPORTED_SUFFIXES

    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                missing.append((item, "directory has no .txt/.docx/.pdf/.html files"))
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            missing.append((item, "no such file or directory"))
    return files, missing


def segment_paths(inputs: list[str], progress: bool = True) -> SegmentResult:
    """Load and segment every input. A file that cannot be read is skipped with its reason;
    it never stops the others. Doc ids that clash get the full file stem."""
    from policytag.text.ingestion import load_document
    from policytag.text.segmentation import segment, summarize

    files, skipped = expand_inputs(inputs)
    result = SegmentResult(skipped=list(skipped))
    seen: dict[str, str] = {}

    def work(path: Path):
        try:
            doc = load_document(path)
            if doc.doc_id in seen and seen[doc.doc_id] != str(path):
                stem = path.stem.lower().replace(" ", "-")
                doc.doc_id = stem if stem not in seen else f"{stem}-{len(seen)}"
            seen[doc.doc_id] = str(path)
            clauses = segment(doc)
            if not clauses:
                raise InputError(f"{path.name}: no clauses found (only titles or furniture)")
        except PolicytagError as e:
            result.skipped.append((str(path), str(e)))
            return
        except Exception as e:  # an unexpected failure on one file must not lose the batch
            result.skipped.append((str(path), f"unexpected error: {type(e).__name__}: {e}"))
            return
        result.clauses.extend(clauses)
        result.rows.append(summarize(doc, clauses))

    if progress and len(files) > 1:
        from rich.progress import Progress

        with Progress(transient=True, console=_console()) as bar:
            task = bar.add_task("segmenting", total=len(files))
            for path in files:
                work(path)
                bar.advance(task)
    else:
        for path in files:
            work(path)
    return result


def _console():
    from rich.console import Console

    return Console(stderr=True)


def print_summary(result: SegmentResult, verbose: bool = False) -> None:
    from rich.table import Table

    table = Table(title="policytag segment", show_lines=False)
    for col, just in [("document", "left"), ("type", "left"), ("provisions", "right"), ("clauses", "right"),
                      ("characters", "right"), ("removed", "right")]:
        table.add_column(col, justify=just, overflow="fold")
    for r in result.rows:
        table.add_row(r["doc_id"], r["kind"], str(r["provisions"]), str(r["clauses"]), str(r["characters"]),
                      str(r["removed"]))
    if len(result.rows) > 1:
        table.add_row("total", "", str(sum(r["provisions"] for r in result.rows)),
                      str(sum(r["clauses"] for r in result.rows)), str(sum(r["characters"] for r in result.rows)), "")
    console = _console()
    console.print(table)
    if verbose:
        for r in result.rows:
            for item in r.get("removed_items", []):
                console.print(f"{r['doc_id']}: removed {item}", highlight=False, soft_wrap=True, markup=False)
    for path, reason in result.skipped:
        console.print(f"[red]skipped[/red] {path}: {reason}", highlight=False, soft_wrap=True)


def _dump(clauses: list[Clause]) -> str:
    lines = [json.dumps(c.to_dict(labels=False), ensure_ascii=False) for c in clauses]
    return "\n".join(lines) + ("\n" if lines else "")


def register(app: typer.Typer) -> None:
    @app.command("segment")
    def segment_command(
        inputs: list[str] = typer.Argument(..., metavar="FILE_OR_DIR...",
                                           help="Documents (.txt .docx .pdf .html) or directories; '-' reads pasted text from stdin."),
        output: Optional[Path] = typer.Option(None, "-o", "--output",
                                              help="Write all clauses to this JSON Lines file (default: stdout)."),
        out_dir: Optional[Path] = typer.Option(None, "--out-dir",
                                               help="Also write one JSON Lines file per document into this directory."),
        suffix: str = typer.Option(".jsonl", "--suffix", help="File name ending for --out-dir files, e.g. .unlabeled.jsonl."),
        doc_id: Optional[str] = typer.Option(None, "--doc-id", help="Doc id for text read from stdin ('-')."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
        verbose: bool = typer.Option(False, "-v", "--verbose", help="List everything normalization removed."),
    ) -> None:
        """Split documents into clauses (JSON Lines without labels) and print a per-document summary.

        Files that cannot be read are skipped with the reason; the exit code is 1 if any was skipped.
        """
        from policytag.text.ingestion import document_from_text
        from policytag.text.segmentation import segment, summarize

        paths = [i for i in inputs if i != "-"]
        result = segment_paths(paths, progress=progress) if paths else SegmentResult()
        if "-" in inputs:
            try:
                doc = document_from_text(sys.stdin.read(), doc_id=doc_id or "pasted", name="<stdin>")
                clauses = segment(doc)
                result.clauses.extend(clauses)
                result.rows.append(summarize(doc, clauses))
            except PolicytagError as e:
                result.skipped.append(("<stdin>", str(e)))

        if output is not None:
            atomic_write_text(output, _dump(result.clauses))
        elif out_dir is None:
            sys.stdout.write(_dump(result.clauses))
            sys.stdout.flush()
        if out_dir is not None:
            by_doc: dict[str, list[Clause]] = {}
            for c in result.clauses:
                by_doc.setdefault(c.doc_id, []).append(c)
            for d, clauses in by_doc.items():
                atomic_write_text(Path(out_dir) / f"{d}{suffix}", _dump(clauses))
        print_summary(result, verbose=verbose)
        if output is not None:
            _console().print(f"wrote {len(result.clauses)} clauses to {output}", highlight=False, soft_wrap=True)
        if out_dir is not None:
            _console().print(f"wrote {len(result.rows)} files to {out_dir}/", highlight=False, soft_wrap=True)
        if result.failed:
            raise typer.Exit(code=1)
