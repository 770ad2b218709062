"""Tagging service shared by the ``predict`` command and the web app.

Every function here works on plain rows (one ``dict`` per clause) so that the CLI, the
app and notebooks see exactly the same output. No logic lives only in a UI callback.

A row has ``doc_id, clause_id, provision_id, context, text, span, agencies, themes,
measures``, one ``p_<label>`` probability per label (themes then measures, the model's
output order) and ``model_version``.
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from policytag.analysis.tally import NONE_ID, document_summary, family_counts, heatmap_matrix  # noqa: F401  (NONE_ID re-exported)
from policytag.clause import Clause
from policytag.fileio import atomic_write_bytes, atomic_write_text, csv_bytes, xlsx_bytes
from policytag.errors import InputError, ModelNotFoundError, PolicytagError

if TYPE_CHECKING:
    import pandas as pd

OUTPUT_FORMATS = (".jsonl", ".csv", ".xlsx")

ProgressArg = bool | Callable[[int], None] | None


# --------------------------------------------------------------------------- model


def predict_settings(overrides: Iterable[str] = ()) -> dict:
    """The ``predict`` section of ``configs/predict.yaml`` (with ``--set`` overrides applied)."""
    return dict(load_predict_config(overrides).get("predict") or {})


def load_predict_config(overrides: Iterable[str] = ()) -> dict:
    from policytag.config import load_config

    return load_config("predict", overrides)


def default_batch_size(model: Any = None) -> int:
    """``predict.batch_size`` of ``configs/predict.yaml``, else the model's own default."""
    bs = predict_settings().get("batch_size")
    if isinstance(bs, int) and bs > 0:
        return bs
    cfg = (getattr(model, "metadata", None) or {}).get("config") or {}
    bs = (cfg.get("predict") or {}).get("batch_size")
    return int(bs) if isinstance(bs, int) and bs > 0 else 32


def resolve_model_dir(model_dir: str | os.PathLike | None) -> Path:
    """The given model directory, or the registry's production model; a clear error if none."""
    if model_dir is not None:
        p = Path(model_dir)
        if not p.exists():
            raise ModelNotFoundError(
                f"model directory {p} does not exist; give a directory written by `policytag train` "
                "(or `policytag models list` to see registered versions)"
            )
        return p
    prod = None
    try:
        from policytag.modeling.registry import ModelRegistry

        prod = ModelRegistry().production()
    except ModuleNotFoundError:
        prod = None
    if prod is None:
        from policytag import paths

        raise ModelNotFoundError(
            f"no --model given and no production model in the registry ({paths.models_dir()}). "
            "Train one with `policytag train -o MODEL_DIR` (or `policytag retrain` to train and "
            "promote a first version), then pass --model MODEL_DIR."
        )
    return Path(prod)


def load_model(model_dir: str | os.PathLike | None = None, runtime: str = "auto",
               device: str = "auto", onnx_variant: str = "int8", onnx_threads: int | None = None,
               onnx_recheck_margin: float | None = None, onnx_batch_size: int | None = None) -> Any:
    """Load a classifier for tagging (the CLI, the app, review-queue and the Ray engine all call this).

    ``runtime="auto"`` (default): the model directory's fast runtime (``onnx/``: int8 with an
    fp32 re-check near thresholds, no torch) on a CPU, PyTorch on a GPU, and PyTorch with a
    one-line notice when the directory has no up-to-date fast runtime
    (:func:`policytag.modeling.fast_runtime.choose_runtime`). ``runtime="torch"`` gives the
    :class:`PolicyClassifier` (transformer or baseline backend); ``runtime="onnx"`` the
    :class:`~policytag.modeling.onnx_runtime.OnnxClassifier` (``onnx_variant`` ``int8`` or
    ``fp32``), an error when it is missing. All have the same ``predict_proba`` / ``predict`` /
    ``label_ids`` / ``thresholds`` API. ``onnx_recheck_margin`` and ``onnx_batch_size`` (0: the
    batch size ``predict_proba`` is given) default to ``configs/predict.yaml``.
    """
    from policytag.modeling.fast_runtime import choose_runtime, notice

    path = resolve_model_dir(model_dir)
    runtime, msg = choose_runtime(path, runtime, device)
    notice(msg)
    if runtime == "onnx":
        from policytag.modeling.onnx_runtime import OnnxClassifier

        return OnnxClassifier.from_pretrained(path, variant=onnx_variant, threads=onnx_threads,
                                              recheck_margin=onnx_recheck_margin, batch_size=onnx_batch_size)
    from policytag.modeling.classifier import PolicyClassifier

    model = PolicyClassifier.from_pretrained(path)
    _move_to_device(model, device)
    return model


def resolve_device(device: str = "auto") -> str:
    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise PolicytagError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device == "cpu":
        return "cpu"
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if not has_cuda:
        raise PolicytagError(f"--device {device} asked for but no CUDA GPU is available here; use --device cpu or auto")
    return device


def _move_to_device(model: Any, device: str) -> None:
    """Put a transformer-backed classifier on ``device`` (a no-op for the baseline backend)."""
    dev = resolve_device(device)
    if getattr(model, "net", None) is not None and hasattr(model, "device"):
        model.device = dev
        model.net.to(dev)
    elif callable(getattr(model, "to", None)):
        model.to(dev)


def model_version(model: Any) -> str:
    v = getattr(model, "version", None)
    if v is None:
        v = (getattr(model, "metadata", None) or {}).get("version")
    return str(v) if v is not None else ""


# --------------------------------------------------------------------------- tagging


def _as_clause(c: Clause | dict | str, i: int) -> Clause:
    if isinstance(c, Clause):
        return c
    if isinstance(c, str):
        return Clause(doc_id="", clause_id=f"#{i + 1}", text=c)
    if isinstance(c, dict):
        return Clause.from_dict(c)
    raise TypeError(f"clause {i}: expected Clause, dict or str, got {type(c).__name__}")


def _length_key(model: Any) -> Callable[[Clause], int]:
    """Input length used to sort clauses: the model's own input text when it exposes it."""
    fmt = getattr(model, "input_text", None)
    if callable(fmt):
        try:
            fmt(Clause(doc_id="", clause_id="", text="x"))
            return lambda c: len(fmt(c))
        except Exception:  # noqa: BLE001 - fall back to a plain estimate
            pass
    return lambda c: len(c.text) + len(c.context or "")


def predict_proba_sorted(model: Any, clauses: Sequence[Clause], batch_size: int | None = None,
                         progress: ProgressArg = False, total_label: str = "tagging") -> np.ndarray:
    """Probabilities for ``clauses`` computed in length-sorted batches (dynamic padding).

    Sorting by input length means each batch is padded only to its own longest clause,
    which is most of the speed-up over a one-clause-at-a-time loop. Results come back in
    the input order. ``progress`` is ``True`` (a rich bar with clauses/s and ETA) or a
    callable receiving the number of clauses finished at each step.
    """
    from policytag.modeling.classifier import check_finite

    n = len(clauses)
    n_labels = len(model.label_ids)
    if n == 0:
        return np.zeros((0, n_labels), dtype=np.float32)
    bs = batch_size or default_batch_size(model)
    key = _length_key(model)
    lengths = np.array([key(c) for c in clauses])
    order = np.argsort(-lengths, kind="stable")  # longest first: memory peaks early, fails fast
    out = np.zeros((n, n_labels), dtype=np.float32)
    # a model that batches (and re-checks) internally takes bigger chunks per call
    step = max(bs, int(getattr(model, "chunk_size", 0) or 0))

    bar = _ClauseBar(total_label, n, int(lengths.sum())) if progress is True else None
    callback = progress if callable(progress) else None
    try:
        for start in range(0, n, step):
            idx = order[start:start + step]
            batch = [clauses[i] for i in idx]
            probs = check_finite(np.asarray(model.predict_proba(batch, batch_size=bs), dtype=np.float32), model)
            out[idx] = probs
            if bar is not None:
                bar.advance(len(idx), int(lengths[idx].sum()))
            if callback is not None:
                callback(len(idx))
    finally:
        if bar is not None:
            bar.close()
    return out


def labels_from_decisions(dec: np.ndarray, label_ids: Sequence[str],
                          themes: Iterable[str]) -> list[tuple[list[str], list[str]]]:
    """(themes, measures) per row of a 0/1 decision matrix (from ``model.decide``)."""
    theme_set = set(themes)
    out = []
    for row in np.asarray(dec):
        ids = [label_ids[int(j)] for j in np.flatnonzero(row)]
        out.append(([i for i in ids if i in theme_set], [i for i in ids if i not in theme_set]))
    return out


def tag_clauses(model: Any, clauses: Iterable[Clause | dict | str], batch_size: int | None = None,
                progress: ProgressArg = False) -> list[dict]:
    """One row per clause, in the input order (see the module docstring for the fields)."""
    cl = [_as_clause(c, i) for i, c in enumerate(clauses)]
    probs = predict_proba_sorted(model, cl, batch_size=batch_size, progress=progress)
    label_ids = list(model.label_ids)
    labels = labels_from_decisions(model.decide_clauses(probs, cl), label_ids, _theme_ids(model))
    version = model_version(model)
    rows = []
    for c, p, (th, me) in zip(cl, probs, labels):
        row: dict[str, Any] = {
            "doc_id": c.doc_id,
            "clause_id": c.clause_id,
            "provision_id": c.provision_id,
            "context": c.context,
            "text": c.text,
            "span": list(c.span) if c.span is not None else None,
            "agencies": list(c.agencies),
            "themes": th,
            "measures": me,
        }
        for lid, v in zip(label_ids, p):
            row[f"p_{lid}"] = round(float(v), 4)
        row["model_version"] = version
        rows.append(row)
    return rows


def _theme_ids(model: Any) -> list[str]:
    ids = getattr(model, "theme_ids", None)
    if ids is not None:
        return list(ids)
    from policytag.data.taxonomy import load_taxonomy

    themes = set(load_taxonomy().themes)
    return [i for i in model.label_ids if i in themes]


def tag_document(model: Any, path_or_document: Any, batch_size: int | None = None,
                 progress: ProgressArg = False) -> list[dict]:
    """Read (if a path), segment and tag one document; raises ``InputError`` for a bad file."""
    from policytag.text.segmentation import segment

    doc = path_or_document
    if isinstance(doc, (str, os.PathLike)):
        from policytag.text.ingestion import load_document

        doc = load_document(doc)
    return tag_clauses(model, segment(doc), batch_size=batch_size, progress=progress)


def document_tagger(model_dir: str | os.PathLike | None = None, *, model: Any = None,
                    progress: bool = False) -> Callable[[Path], list[dict]]:
    """``tag(path) -> rows`` for the analysis inputs (:func:`policytag.analysis.inputs.load_inputs`):
    the model (``model``, or ``model_dir``, or the registry's production model) is loaded on the
    first document, once."""
    state = {"model": model}

    def tag(path: Path) -> list[dict]:
        if state["model"] is None:
            state["model"] = load_model(model_dir)
        return tag_document(state["model"], path, progress=progress)

    return tag


def tag_text(model: Any, text: str, doc_id: str = "pasted", batch_size: int | None = None,
             progress: ProgressArg = False) -> list[dict]:
    """Clean, segment and tag pasted text."""
    from policytag.text.ingestion import document_from_text

    return tag_document(model, document_from_text(text, doc_id=doc_id), batch_size=batch_size, progress=progress)


# --------------------------------------------------------------------------- aggregation


def aggregate_provisions(rows: Sequence[dict]) -> list[dict]:
    """Provision-level rows: the union of the clause labels (LABELING.md section 1).

    Clauses are grouped by ``(doc_id, provision_id)`` in the order they first appear; a
    clause without a provision id is its own provision. Text is the clauses joined, span
    covers them, each ``p_<label>`` is the maximum over the clauses.
    """
    groups: "OrderedDict[tuple, list[dict]]" = OrderedDict()
    for r in rows:
        pid = r.get("provision_id") or ""
        key = (r.get("doc_id", ""), pid) if pid else (r.get("doc_id", ""), "#clause", r.get("clause_id"), id(r))
        groups.setdefault(key, []).append(r)
    out = []
    for members in groups.values():
        first = members[0]
        prob_keys = [k for k in first if k.startswith("p_")]
        spans = [m["span"] for m in members if m.get("span")]
        row = {
            "doc_id": first.get("doc_id", ""),
            "provision_id": first.get("provision_id") or first.get("clause_id", ""),
            "clause_ids": [m.get("clause_id", "") for m in members],
            "n_clauses": len(members),
            "context": first.get("context", ""),
            "text": "".join(m.get("text", "") for m in members),
            "span": [min(s[0] for s in spans), max(s[1] for s in spans)] if spans else None,
            "agencies": _union(m.get("agencies") or [] for m in members),
            "themes": _union(m.get("themes") or [] for m in members),
            "measures": _union(m.get("measures") or [] for m in members),
        }
        for k in prob_keys:
            row[k] = max(float(m.get(k, 0.0)) for m in members)
        row["model_version"] = first.get("model_version", "")
        out.append(row)
    return out


def _union(lists: Iterable[Iterable[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for lst in lists:
        for x in lst:
            seen.setdefault(x, None)
    return list(seen)


def summary_path(output: str | os.PathLike) -> Path:
    """``OUT.summary.csv`` beside ``OUT`` (``tags.xlsx`` → ``tags.summary.csv``)."""
    p = Path(output)
    return p.with_name(f"{p.stem}.summary.csv")


# --------------------------------------------------------------------------- writing


def _flat(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return ";".join(str(x) for x in v)
    if v is None:
        return ""
    return v


def tabular_records(rows: Sequence[dict]) -> tuple[list[str], list[dict]]:
    """Rows flattened for CSV / Excel: lists joined by ``;``, span as ``span_start``/``span_end``."""
    columns: list[str] = []
    for r in rows:
        for k in r:
            if k == "span":
                for kk in ("span_start", "span_end"):
                    if kk not in columns:
                        columns.append(kk)
            elif k not in columns:
                columns.append(k)
    recs = []
    for r in rows:
        d = {}
        for k, v in r.items():
            if k == "span":
                d["span_start"], d["span_end"] = (v[0], v[1]) if v else ("", "")
            else:
                d[k] = _flat(v)
        recs.append(d)
    return columns, recs


def write_rows(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write rows as ``.jsonl``, ``.csv`` (UTF-8 with BOM, so Excel shows Chinese) or ``.xlsx``.

    The format follows the extension. The file appears complete or not at all (written
    to a temporary file in the same directory, then renamed).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".jsonl":
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    elif ext == ".csv":
        columns, recs = tabular_records(rows)
        write_csv(recs, path, columns)
    elif ext == ".xlsx":
        import pandas as pd

        columns, recs = tabular_records(rows)
        write_xlsx(pd.DataFrame(recs, columns=columns), path)
    else:
        raise InputError(f"output {path}: unknown format {ext or '(no extension)'}; use .jsonl, .csv or .xlsx")
    return path


def write_csv(records: Sequence[dict] | "pd.DataFrame", path: str | os.PathLike,  # noqa: F821
              columns: Sequence[str] | None = None) -> Path:
    """Atomic CSV in UTF-8 with a byte-order mark (Excel then reads Chinese correctly).

    A text starting with ``=``, ``+``, ``-``, ``@``, tab or CR gets a leading ``'`` so that
    a spreadsheet shows it instead of running it as a formula (:func:`policytag.fileio.safe_cell`)."""
    import pandas as pd

    if isinstance(records, pd.DataFrame):
        columns = list(records.columns)
        records = records.to_dict("records")
    return atomic_write_bytes(path, csv_bytes(records, list(columns or [])))


def write_xlsx(df: "pd.DataFrame", path: str | os.PathLike, sheet_name: str = "clauses") -> Path:  # noqa: F821
    """Atomic Excel file (the frame's columns, not its index). Characters that Excel forbids
    (control codes) are dropped; text cells are written as strings, never as formulas, and
    one starting with a formula character gets a leading ``'`` (as in :func:`write_csv`)."""
    return atomic_write_bytes(path, xlsx_bytes(df.to_dict("records"), list(df.columns), sheet_name=sheet_name))


def write_summary(rows: Sequence[dict], path: str | os.PathLike, taxonomy=None) -> Path:
    """Write :func:`document_summary` as CSV (UTF-8 with BOM)."""
    return write_csv(document_summary(rows, taxonomy), path)


# --------------------------------------------------------------------------- progress


class _ClauseBar:
    """A rich progress bar counting clauses (with clauses/s) and timing on characters.

    The ETA is computed from characters done, not clauses, because batches are sorted
    longest first: a clause-based ETA would be far too pessimistic at the start.
    """

    def __init__(self, description: str, n_clauses: int, n_chars: int):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.t0 = time.perf_counter()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[clauses]}/{task.fields[n_clauses]} clauses"),
            TextColumn("{task.fields[rate]} clauses/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.n = n_clauses
        self.done = 0
        self.task = self.progress.add_task(description, total=max(n_chars, 1), clauses=0, n_clauses=n_clauses, rate="-")
        self.progress.start()

    def advance(self, clauses: int, chars: int) -> None:
        self.done += clauses
        dt = max(time.perf_counter() - self.t0, 1e-9)
        self.progress.update(self.task, advance=chars, clauses=self.done, rate=f"{self.done / dt:.1f}")

    def close(self) -> None:
        self.progress.stop()
