"""``policytag segment``: documents -> clause JSON Lines (LABELING.md section 5, no labels)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

import typer

from policytag.clause import Clause
from policytag.fileio import atomic_write_text
from policytag.errors import InputError, PolicytagError


@dataclass
class SegmentResult:
    """The outcome of segmenting a batch: per-document rows and the files skipped."""

    clauses: list[Clause] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)  # one per document read
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    warnings: list[str] = field(default_factory=list)  # read, but something was dropped (says where)

    @property
    def failed(self) -> bool:
        return bool(self.skipped)


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Documents from the given files, directories (recursively) and glob patterns
    (:func:`policytag.text.inputs.expand_inputs`, the expansion ``predict`` uses too).
    Returns the files and the failures (path, reason); files merely ignored in a directory
    (images, spreadsheets, ...) are not failures."""
    from policytag.text.inputs import expand_inputs as expand

    files, skips = expand(inputs, clauses=False)
    return [f.path for f in files], [(s.path, s.reason) for s in skips if s.failed]


def segment_paths(inputs: list[str], progress: bool = True, limits: dict | None = None) -> SegmentResult:
    """Load and segment every input. A file that cannot be read is skipped with its reason;
    it never stops the others. Doc ids that clash get the full file stem."""

    files, skipped = expand_inputs(inputs)
    return segment_files(files, skipped, progress=progress, limits=limits)


def segment_files(files: list[Path], skipped: Sequence[tuple[str, str]] = (), progress: bool = True,
                  limits: dict | None = None) -> SegmentResult:
    """Load and segment ``files`` (already expanded); see :func:`segment_paths`."""
    import warnings

    from policytag.errors import InputWarning
    from policytag.text.ingestion import load_document
    from policytag.text.segmentation import segment, summarize

    result = SegmentResult(skipped=list(skipped))
    seen: dict[str, str] = {}

    def work(path: Path):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", InputWarning)
                doc = load_document(path, limits=limits)
            result.warnings.extend(str(w.message) for w in caught if issubclass(w.category, InputWarning))
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
    columns: list[tuple[str, Literal["left", "right"]]] = [
        ("document", "left"), ("type", "left"), ("provisions", "right"), ("clauses", "right"),
        ("characters", "right"), ("removed", "right")]
    for col, just in columns:
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
    for note in result.warnings:
        console.print(f"[yellow]warning[/yellow] {note}", highlight=False, soft_wrap=True)


def read_stdin_document(doc_id: str):
    """Standard input as a pasted document: its bytes are decoded like a .txt file (any
    common encoding), so binary input is refused with a message instead of a traceback."""
    import warnings

    from policytag.errors import InputWarning
    from policytag.text.ingestion import decode_bytes, document_from_text

    stream = getattr(sys.stdin, "buffer", None)
    data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
    notes: list[str] = []
    text, _enc = decode_bytes(data, "<stdin>", notes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InputWarning)
        doc = document_from_text(text, doc_id=doc_id, name="<stdin>")
    doc.meta["warnings"] = notes + [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    return doc


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
        from policytag.fileio import check_not_an_input, check_writable
        from policytag.text.segmentation import segment, summarize

        paths = [i for i in inputs if i != "-"]
        files, skipped = expand_inputs(paths) if paths else ([], [])
        if output is not None:  # before anything is read or written
            check_not_an_input(output, files)
            check_writable(output)
        result = segment_files(files, skipped, progress=progress)
        if "-" in inputs:
            try:
                doc = read_stdin_document(doc_id or "pasted")
                clauses = segment(doc)
                result.clauses.extend(clauses)
                result.rows.append(summarize(doc, clauses))
                result.warnings.extend(doc.meta.get("warnings", []))
            except PolicytagError as e:
                result.skipped.append(("<stdin>", str(e)))

        by_doc: dict[str, list[Clause]] = {}
        if out_dir is not None:
            for c in result.clauses:
                by_doc.setdefault(c.doc_id, []).append(c)
            for d in by_doc:  # every per-document file is checked before the first is written
                check_not_an_input(Path(out_dir) / f"{d}{suffix}", files, what="--out-dir file")
        if output is not None:
            atomic_write_text(output, _dump(result.clauses))
        elif out_dir is None:
            sys.stdout.write(_dump(result.clauses))
            sys.stdout.flush()
        if out_dir is not None:  # by_doc is empty otherwise
            for d, clauses in by_doc.items():
                atomic_write_text(Path(out_dir) / f"{d}{suffix}", _dump(clauses))
        print_summary(result, verbose=verbose)
        if output is not None:
            _console().print(f"wrote {len(result.clauses)} clauses to {output}", highlight=False, soft_wrap=True)
        if out_dir is not None:
            _console().print(f"wrote {len(result.rows)} files to {out_dir}/", highlight=False, soft_wrap=True)
        if result.failed:
            raise typer.Exit(code=1)
