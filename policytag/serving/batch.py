"""The engine of ``policytag predict``: expand inputs, read and segment, tag, write.

Inputs are any mix of documents (every type ingestion reads), directories (searched
recursively), glob patterns and JSON Lines files of pre-segmented clauses
(``{"clause_id", "text", "context"?, "doc_id"?}``, classified as given). A bad file is
reported and skipped; it never stops the batch. The exit code says whether any input
failed: 0 all read, 1 some input skipped (the output still holds everything else).
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from policytag.clause import Clause, read_jsonl
from policytag.errors import InputError, InputWarning, PolicytagError
from policytag.fileio import check_writable
from policytag.serving import tagging
from policytag.text import inputs as _inputs
from policytag.text.inputs import CLAUSE_SUFFIXES as CLAUSE_JSONL_SUFFIXES  # noqa: F401
from policytag.text.inputs import InputFile as _Input  # noqa: F401 - the names this module used to define
from policytag.text.inputs import Skip, document_suffixes  # noqa: F401

EXIT_OK = 0
EXCEL_MAX_ROWS = 1_048_575  # an .xlsx sheet holds 1 048 576 rows, one is the header
EXIT_SOME_FAILED = 1


@dataclass
class PredictOptions:
    inputs: Sequence[str]
    output: str
    model: str | None = None
    level: str = "clause"  # clause | provision
    batch_size: int | None = None
    device: str = "auto"
    runtime: str = "auto"  # auto | torch | onnx
    onnx_variant: str = "int8"
    onnx_threads: int | None = None
    onnx_recheck_margin: float | None = None  # None: configs/predict.yaml
    onnx_batch_size: int | None = None        # None: configs/predict.yaml
    summary: bool = True
    progress: bool = True
    limits: dict | None = None  # per-input bounds (configs/predict.yaml `limits`); None: those defaults


@dataclass
class BatchResult:
    rows: list[dict] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    clauses: int = 0
    output: Path | None = None
    summary: Path | None = None
    model_dir: str = ""
    model_version: str = ""
    seconds_tagging: float = 0.0
    seconds_total: float = 0.0

    @property
    def failed(self) -> list[Skip]:
        return [s for s in self.skipped if s.failed]

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.failed else EXIT_OK


# --------------------------------------------------------------------------- inputs


def expand_inputs(inputs: Sequence[str], exclude: Sequence[str | os.PathLike] = ()) -> tuple[list[_Input], list[Skip]]:
    """The command-line inputs as files to read (:func:`policytag.text.inputs.expand_inputs`).

    ``exclude`` (this run's own output files): an output that is one of the inputs is an
    :class:`~policytag.errors.OutputError`, except an earlier output found in a folder being
    tagged, which is ignored (see :func:`policytag.text.inputs.separate_outputs`).
    """
    files, skips = _inputs.expand_inputs(inputs, clauses=True)
    if exclude:
        files = _inputs.separate_outputs(files, skips, exclude)
    return files, skips


def read_clause_jsonl(path: Path, skips: list[Skip]) -> list[Clause]:
    """Pre-segmented clauses, classified as given. A bad line is skipped (and reported)."""
    default_doc = _doc_id_for(path)
    out: list[Clause] = []
    bad = 0
    try:
        for lineno, obj in read_jsonl(path):
            try:
                c = Clause.from_dict(obj)
            except (InputError, TypeError, ValueError) as e:
                bad += 1
                skips.append(Skip(f"{path}:{lineno}", f"clause not read: {e}"))
                continue
            if not c.doc_id:
                c.doc_id = default_doc
            if not c.clause_id:
                c.clause_id = f"{c.doc_id}#{lineno}"
            c.themes = c.measures = None
            c.source = None
            out.append(c)
    except InputError as e:  # bad JSON: keep the clauses before the broken line
        skips.append(Skip(str(path), f"{e}; {len(out)} clauses before it were kept"))
    except UnicodeDecodeError:
        skips.append(Skip(str(path), "not UTF-8 text; clause JSON Lines must be UTF-8"))
        return []
    if not out and bad == 0 and not any(s.path == str(path) for s in skips):
        skips.append(Skip(str(path), "no clauses in this file (empty)"))
    return out


def _doc_id_for(path: Path) -> str:
    try:
        from policytag.text.ingestion import doc_id_for

        return doc_id_for(path)
    except ImportError:
        return path.stem


def read_document(path: Path, limits: dict | None = None) -> list[Clause]:
    """Ingest and segment one document; raises ``InputError`` with the reason. What ingestion
    drops from a file it still reads is announced as an :class:`~policytag.errors.InputWarning`."""
    from policytag.text.ingestion import load_document
    from policytag.text.segmentation import segment

    doc = load_document(path, limits=limits)
    clauses = segment(doc)
    if not clauses:
        raise InputError(f"{path}: no clauses found after cleaning (the text may be only headings or page furniture)")
    return clauses


def _short_reason(e: BaseException | str, path: Path) -> str:
    msg = str(e).strip() or type(e).__name__
    for prefix in (f"{path}: ", f"{path.name}: "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def collect_clauses(files: Sequence[_Input], skips: list[Skip], progress: bool = True,
                    reader: Callable[..., list[Clause]] = read_document,
                    limits: dict | None = None) -> tuple[list[Clause], list[str]]:
    """Read every input; returns all clauses and the inputs that gave clauses. ``limits`` is
    passed to ``reader`` (as its second argument) when given."""
    clauses: list[Clause] = []
    read: list[str] = []
    doc_ids: Counter = Counter()
    bar = _FileBar(len(files)) if progress and files else None
    try:
        for f in files:
            if bar:
                bar.start(f.path.name)
            try:
                if f.kind == "clauses":
                    got = read_clause_jsonl(f.path, skips)
                else:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always", InputWarning)
                        got = reader(f.path) if limits is None else reader(f.path, limits)
                    for w in caught:
                        if issubclass(w.category, InputWarning):
                            skips.append(Skip(str(f.path), _short_reason(w.message, f.path), failed=False,
                                              warning=True))
                        else:
                            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                    got = _unique_doc_id(got, doc_ids)
            except PolicytagError as e:
                skips.append(Skip(str(f.path), _short_reason(e, f.path)))
                got = []
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:  # noqa: BLE001 - a bad file never stops the batch
                skips.append(Skip(str(f.path), f"could not be read ({type(e).__name__}: {_short_reason(e, f.path)})"))
                got = []
            if got:
                clauses.extend(got)
                read.append(str(f.path))
            if bar:
                bar.advance()
    finally:
        if bar:
            bar.close()
    return clauses, read


def _unique_doc_id(clauses: list[Clause], seen: Counter) -> list[Clause]:
    """Two files with the same name in different folders get ``name``, ``name-2``..."""
    if not clauses:
        return clauses
    base = clauses[0].doc_id
    seen[base] += 1
    if seen[base] == 1:
        return clauses
    new = f"{base}-{seen[base]}"
    for c in clauses:
        if c.doc_id == base:
            c.doc_id = new
            if c.clause_id.startswith(base):
                c.clause_id = new + c.clause_id[len(base):]
    return clauses


# --------------------------------------------------------------------------- run


def check_output(output: str | os.PathLike) -> Path:
    p = Path(output)
    if p.suffix.lower() not in tagging.OUTPUT_FORMATS:
        raise PolicytagError(f"output {p}: the extension must be one of {', '.join(tagging.OUTPUT_FORMATS)} (it picks the format)")
    if p.is_dir():
        raise PolicytagError(f"output {p} is a directory; give a file name such as {p / 'tags.csv'}")
    return p


def run_predict(opts: PredictOptions, model: Any = None, console: Any = None) -> BatchResult:
    """Run a whole ``predict`` batch and write the outputs. ``model`` may be given preloaded."""
    t0 = time.perf_counter()
    out_path = check_output(opts.output)
    if opts.level not in ("clause", "provision"):
        raise PolicytagError(f"--level must be 'clause' or 'provision', got {opts.level!r}")
    if opts.batch_size is not None and opts.batch_size < 1:
        raise PolicytagError(f"--batch-size must be at least 1, got {opts.batch_size}")
    if opts.onnx_batch_size is not None and opts.onnx_batch_size < 0:
        raise PolicytagError(f"predict.onnx_batch_size must be at least 1 (or null: predict.batch_size), "
                             f"got {opts.onnx_batch_size}")
    console = console or _console()
    result = BatchResult()
    # inputs first: an output that is one of the inputs, or that cannot be written, stops
    # the run before the model is loaded and before anything is written
    files, skips = expand_inputs(opts.inputs, exclude=[out_path, tagging.summary_path(out_path)])
    check_writable(out_path)
    if opts.summary:
        check_writable(tagging.summary_path(out_path), what="summary")

    if model is None:
        model_dir = tagging.resolve_model_dir(opts.model)
        with console.status(f"loading model {model_dir} ({opts.runtime})"):
            model = tagging.load_model(model_dir, runtime=opts.runtime, device=opts.device,
                                       onnx_variant=opts.onnx_variant, onnx_threads=opts.onnx_threads,
                                       onnx_recheck_margin=opts.onnx_recheck_margin,
                                       onnx_batch_size=opts.onnx_batch_size)
        result.model_dir = str(model_dir)
    result.model_version = tagging.model_version(model)

    clauses, read = collect_clauses(files, skips, progress=opts.progress, limits=opts.limits)
    result.skipped, result.files_read = skips, read

    if out_path.suffix.lower() == ".xlsx" and len(clauses) > EXCEL_MAX_ROWS and opts.level == "clause":
        raise PolicytagError(
            f"{len(clauses)} clauses do not fit in one Excel sheet ({EXCEL_MAX_ROWS} rows); "
            "write .csv or .jsonl instead, or use --level provision"
        )
    t1 = time.perf_counter()
    rows = tagging.tag_clauses(model, clauses, batch_size=opts.batch_size, progress=opts.progress and bool(clauses))
    result.seconds_tagging = time.perf_counter() - t1
    result.clauses = len(rows)
    clause_rows = rows
    if opts.level == "provision":
        rows = tagging.aggregate_provisions(rows)
    result.rows = rows

    tagging.write_rows(rows, out_path)
    result.output = out_path
    if opts.summary:
        # the summary always counts clauses, also at --level provision
        result.summary = tagging.write_summary(clause_rows, tagging.summary_path(out_path))
    result.seconds_total = time.perf_counter() - t0
    return result


def print_report(result: BatchResult, console: Any = None, level: str = "clause") -> None:
    """The final summary: files read, skipped with reasons, clauses tagged, speed, outputs."""
    console = console or _console()
    rate = result.clauses / result.seconds_tagging if result.seconds_tagging > 0 else 0.0
    console.print(
        f"[bold]read[/] {len(result.files_read)} file(s), "
        f"[bold]tagged[/] {result.clauses} clause(s)"
        + (f" at {rate:.1f} clauses/s" if result.clauses else "")
        + (f" with model {result.model_version}" if result.model_version else "")
    )
    failed = result.failed
    notes = [s for s in result.skipped if s.warning]
    ignored = [s for s in result.skipped if not s.failed and not s.warning]
    if failed:
        console.print(f"[bold red]skipped[/] {len(failed)} input(s):")
        for s in failed:
            console.print(f"  [red]✗[/] {s.path}: {s.reason}", markup=True, highlight=False)
    own = [s for s in ignored if "output of this run" in s.reason]
    ignored = [s for s in ignored if s not in own]
    if ignored:
        kinds = Counter(Path(s.path).suffix.lower() or "(none)" for s in ignored)
        console.print(f"ignored {len(ignored)} file(s) of types policytag does not read: "
                      + ", ".join(f"{k} ×{v}" for k, v in kinds.most_common()))
    for s in own:
        console.print(f"ignored {s.path}: the output of this run")
    for s in notes:
        console.print(f"[yellow]warning[/] {s.path}: {s.reason}", markup=True, highlight=False)
    if result.output:
        what = "provisions" if level == "provision" else "clauses"
        console.print(f"[bold]wrote[/] {len(result.rows)} {what} to {result.output}")
    if result.summary:
        console.print(f"[bold]wrote[/] per-document summary to {result.summary}")
    if failed:
        console.print("[yellow]some inputs were skipped: exit code 1[/]")


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- progress


class _FileBar:
    def __init__(self, n: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]reading"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
            TimeElapsedColumn(), TextColumn("{task.fields[name]}"), console=_console(),
        )
        self.task = self.progress.add_task("reading", total=n, name="")
        self.progress.start()

    def start(self, name: str) -> None:
        self.progress.update(self.task, name=name)

    def advance(self) -> None:
        self.progress.update(self.task, advance=1)

    def close(self) -> None:
        self.progress.update(self.task, name="")
        self.progress.stop()
