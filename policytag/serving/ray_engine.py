"""``policytag predict --engine ray``: the batch engine on a Ray cluster.

Same inputs and same outputs as the local path (:mod:`policytag.serving.batch`), for
archives too large for one machine:

* the driver (where the command runs) expands the inputs exactly as the local path does
  and sends one item per document (its path) or per chunk of pre-segmented clauses;
* Ray Data ``map_batches`` runs :class:`TaggerWorker`, a callable class in an actor pool:
  one model copy per actor (``--num-workers N``; CPU actors, or one GPU each when the
  cluster has GPUs). Each call reads and segments its documents with the project's own
  reader and tags the clauses with :func:`policytag.serving.tagging.tag_clauses`, the
  function behind the local path; a bad file becomes a "skipped" record, never a failure;
* results stream back in input order (``preserve_order``); the driver applies the local
  path's duplicate-document-name rule and writes the output: the same ``.jsonl`` /
  ``.csv`` / ``.xlsx`` file and ``OUT.summary.csv`` as the local path, or, for large runs,
  a directory of Parquet or JSONL shards with ``_summary.csv`` and ``_manifest.json``
  (written to a temporary directory, renamed into place when complete).

Writing on the driver (not on the workers) keeps the outputs on the machine that asked
for them, whatever filesystem the worker nodes have. With ``ray.shared_storage: false``
the driver also reads the inputs and ships the model through the object store, for
clusters whose nodes do not see the driver's files.

Settings: the ``ray:`` section of ``configs/predict.yaml`` (``--set ray.KEY=VALUE``).
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import logging
import math
import os
import shutil
import socket
import tempfile
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from policytag.clause import Clause
from policytag.fileio import atomic_write_text, check_writable, normal_permissions
from policytag.errors import PolicytagError
from policytag.serving import batch, tagging

SHARD_FORMATS = ("parquet", "jsonl")
MANIFEST = "_manifest.json"  # "_": Parquet readers skip it (pandas.read_parquet(OUTDIR) reads the shards)
SUMMARY = "_summary.csv"
DEFAULTS: dict[str, Any] = {
    "address": None, "num_workers": None, "cpus_per_worker": 1, "gpus_per_worker": 1,
    "docs_per_call": 4, "chunk_clauses": 256, "shared_storage": True, "format": "parquet",
    "shard_rows": 100_000, "num_cpus": None, "object_store_memory_mb": 512, "temp_dir": None,
    "log_to_driver": False,
}
_ITEM_COLUMNS = ("item", "file", "kind", "path", "abspath", "clauses")
_OUT_COLUMNS = ("item", "file", "row", "skip_path", "skip_reason", "error")


class RayEngineError(PolicytagError):
    """Ray is missing, the cluster cannot be reached, or it cannot run the job as asked."""


def ray_settings(overrides: Iterable[str] = (), **cli: Any) -> dict:
    """The ``ray`` section of ``configs/predict.yaml`` with ``--set`` overrides, then CLI values (when not None)."""
    cfg = dict(DEFAULTS)
    cfg.update({k: v for k, v in (tagging.load_predict_config(overrides).get("ray") or {}).items()})
    cfg.update({k: v for k, v in cli.items() if v is not None})
    return cfg


@dataclass
class RayBatchResult(batch.BatchResult):
    """A :class:`~policytag.serving.batch.BatchResult` plus what the cluster run did.

    In directory mode ``rows`` stays empty (the rows are in the shards); ``n_rows`` counts them.
    """

    n_rows: int = 0
    shards: list[Path] | None = None
    manifest: Path | None = None
    shard_format: str | None = None
    workers: int = 0
    device: str = "cpu"
    address: str = ""


# --------------------------------------------------------------------------- the worker


class TaggerWorker:
    """One model copy (a Ray actor): reads and segments documents, tags clauses.

    Called by Ray Data with a batch of items (``pyarrow.Table`` of ``_ITEM_COLUMNS``);
    returns one record per clause (``row``: the local path's row as JSON) and one per
    input that could not be read (``skip_path`` / ``skip_reason``), in item order.
    """

    def __init__(self, model_dir: str, runtime: str = "auto", device: str = "cpu", onnx_variant: str = "int8",
                 onnx_threads: int | None = None, batch_size: int | None = None, threads: int | None = None,
                 model_blob: list | None = None, limits: dict | None = None):
        self._tmp = None
        self.limits = limits  # per-input bounds (configs/predict.yaml `limits`, --set applied)
        self._error: PolicytagError | None = None
        try:
            self._setup(model_dir, runtime, device, onnx_variant, onnx_threads, batch_size, threads, model_blob)
        except PolicytagError as e:
            # reported by every call as an "error" record: the driver stops the job with this
            # message (an exception raised here would reach the driver only as a traceback)
            self._error = e

    def _setup(self, model_dir, runtime, device, onnx_variant, onnx_threads, batch_size, threads, model_blob):
        if threads:
            try:
                import torch

                torch.set_num_threads(int(threads))
            except ImportError:  # pragma: no cover - torch is a dependency
                pass
        if model_blob:  # shared_storage=false: the driver shipped the model files
            import ray

            files = ray.get(model_blob[0])
            self._tmp = tempfile.mkdtemp(prefix="policytag-model-")
            for rel, data in files.items():
                p = Path(self._tmp) / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(data)
            model_dir = self._tmp
        elif not Path(model_dir).exists():
            raise RayEngineError(
                f"model directory {model_dir} is not visible on Ray node {socket.gethostname()}; put it on storage "
                "every node sees at the same path, or use --set ray.shared_storage=false to ship it from the driver")
        try:
            self.model = tagging.load_model(model_dir, runtime=runtime, device=device, onnx_variant=onnx_variant,
                                            onnx_threads=onnx_threads or threads)
        finally:
            # a torch model is in memory now: an actor killed later leaves nothing behind
            # (ONNX may still open the fp32 file later, to re-check near-threshold clauses)
            if self._tmp and getattr(self.model, "backend", "") != "onnx":
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None
        self.batch_size = batch_size

    def __del__(self):
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __call__(self, items: Any) -> Any:
        import pyarrow as pa

        if self._error is not None:
            first = (items.to_pylist() if hasattr(items, "to_pylist") else _rows_of(items))[:1]
            return pa.Table.from_pylist([{"item": first[0]["item"] if first else 0, "file": -1, "row": None,
                                          "skip_path": None, "skip_reason": None, "error": str(self._error)}],
                                        schema=_out_schema())

        recs = items.to_pylist() if hasattr(items, "to_pylist") else _rows_of(items)
        clauses: list[Clause] = []
        owner: list[tuple[int, int]] = []
        out: list[dict] = []
        for it in recs:
            got, skip = self._clauses_of(it)
            if skip is not None:
                out.append({"item": it["item"], "file": it["file"], "row": None,
                            "skip_path": it["path"], "skip_reason": skip})
            clauses.extend(got)
            owner.extend((it["item"], it["file"]) for _ in got)
        rows = tagging.tag_clauses(self.model, clauses, batch_size=self.batch_size) if clauses else []
        # skip records first within a batch is fine: an item is either skipped or tagged
        for (item, file), row in zip(owner, rows):
            out.append({"item": item, "file": file, "row": json.dumps(row, ensure_ascii=False),
                        "skip_path": None, "skip_reason": None})
        out.sort(key=lambda r: r["item"])  # stable: clause order within an item is kept
        return pa.Table.from_pylist(out, schema=_out_schema())

    def _clauses_of(self, it: dict) -> tuple[list[Clause], str | None]:
        if it["kind"] == "clauses":
            return [Clause.from_dict(d) for d in json.loads(it["clauses"])], None
        display = Path(it["path"])
        target = Path(it["abspath"] or it["path"])
        if not target.exists() and not display.exists():
            return [], (f"not found on Ray node {socket.gethostname()}: inputs must be on storage every node "
                        "sees at the same path, or use --set ray.shared_storage=false to read them on the driver")
        try:
            return batch.read_document(target, self.limits), None
        except PolicytagError as e:
            return [], batch._short_reason(e, target).replace(str(target), str(display))
        except Exception as e:  # noqa: BLE001 - a bad file never stops the batch
            return [], f"could not be read ({type(e).__name__}: {batch._short_reason(e, target)})"


def _rows_of(items: Any) -> list[dict]:
    """Rows of a dict-of-arrays batch (Ray's ``numpy`` batch format)."""
    cols = list(items)
    n = len(items[cols[0]]) if cols else 0
    return [{c: (items[c][i].item() if hasattr(items[c][i], "item") else items[c][i]) for c in cols} for i in range(n)]


def _out_schema():
    import pyarrow as pa

    return pa.schema([("item", pa.int64()), ("file", pa.int64()), ("row", pa.string()),
                      ("skip_path", pa.string()), ("skip_reason", pa.string()), ("error", pa.string())])


# --------------------------------------------------------------------------- outputs


def resolve_output(output: str | os.PathLike, fmt: str | None, settings: dict) -> tuple[str, Path, str | None]:
    """``("file", path, None)`` for a ``.jsonl/.csv/.xlsx`` file, ``("dir", path, fmt)`` for shards.

    A directory output is an existing directory, a name without extension, or any name
    with ``--format``; it must be new or empty.
    """
    p = Path(output)
    if fmt is not None or p.is_dir() or (p.suffix == "" and not p.is_file()):
        fmt = (fmt or settings.get("format") or "parquet").lower()
        if fmt not in SHARD_FORMATS:
            raise PolicytagError(f"--format must be {' or '.join(SHARD_FORMATS)}, got {fmt!r}")
        if p.suffix.lower() in tagging.OUTPUT_FORMATS and not p.is_dir():
            raise PolicytagError(f"--format {fmt} writes a directory of shards; give a directory (-o {p.with_suffix('')}/) "
                                 f"or drop --format to write the single file {p}")
        if p.is_file():
            raise PolicytagError(f"output {p} is a file; a sharded output needs a new or empty directory")
        if p.is_dir() and any(p.iterdir()):
            raise PolicytagError(f"output directory {p} is not empty; choose a new directory or remove this one")
        return "dir", p, fmt
    return "file", batch.check_output(p), None


_LIST_STR = ("agencies", "themes", "measures", "clause_ids")


def arrow_schema(columns: Sequence[str]):
    """Parquet column types of a row: lists stay lists, ``p_*`` are doubles."""
    import pyarrow as pa

    fields = []
    for c in columns:
        if c == "span":
            t = pa.list_(pa.int64())
        elif c in _LIST_STR:
            t = pa.list_(pa.string())
        elif c.startswith("p_"):
            t = pa.float64()
        elif c == "n_clauses":
            t = pa.int64()
        else:
            t = pa.string()
        fields.append((c, t))
    return pa.schema(fields)


class ShardWriter:
    """Rows into ``part-00000.parquet`` (or ``.jsonl``) files of ``shard_rows`` rows each."""

    def __init__(self, directory: Path, fmt: str, shard_rows: int):
        self.dir, self.fmt, self.shard_rows = directory, fmt, max(1, int(shard_rows))
        self.buf: list[dict] = []
        self.files: list[Path] = []
        self.rows = 0

    def add(self, rows: Sequence[dict]) -> None:
        self.buf.extend(rows)
        while len(self.buf) >= self.shard_rows:
            self._flush(self.buf[: self.shard_rows])
            self.buf = self.buf[self.shard_rows:]

    def close(self) -> list[Path]:
        if self.buf:
            self._flush(self.buf)
            self.buf = []
        return self.files

    def _flush(self, rows: list[dict]) -> None:
        path = self.dir / f"part-{len(self.files):05d}.{self.fmt}"
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            cols: list[str] = []
            for r in rows:
                cols.extend(k for k in r if k not in cols)
            pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(cols)), path)
        else:
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        self.files.append(path)
        self.rows += len(rows)


class SummaryCounts:
    """What ``OUT.summary.csv`` needs, kept small: per document, clause counts per (themes, measures)."""

    def __init__(self):
        self.docs: "OrderedDict[str, Counter]" = OrderedDict()

    def add(self, row: dict) -> None:
        key = (tuple(row.get("themes") or ()), tuple(row.get("measures") or ()))
        self.docs.setdefault(row.get("doc_id", ""), Counter())[key] += 1

    def rows(self) -> list[dict]:
        """Rows for :func:`tagging.document_summary` (shared dicts: a list of references, not copies)."""
        out: list[dict] = []
        for doc_id, counts in self.docs.items():
            for (th, me), n in counts.items():
                out.extend([{"doc_id": doc_id, "themes": list(th), "measures": list(me)}] * n)
        return out


# --------------------------------------------------------------------------- cluster


@dataclass
class _Cluster:
    started: bool
    address: str
    cpus: float
    gpus: float


def connect(address: str | None, settings: dict, min_cpus: int = 1) -> _Cluster:
    """Join the cluster at ``address``, reuse this process's Ray, or start a local one on loopback."""
    import sys

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not address and "ray" not in sys.modules:
        # a cluster started here serves this process only: keep it on the loopback address
        # (Ray otherwise binds its node to the machine's network address)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise RayEngineError('--engine ray needs Ray: pip install "policytag[cluster]" (ray[data], pyarrow)') from None
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"log_to_driver": bool(settings.get("log_to_driver")), "configure_logging": False}
        if address:
            _check_reachable(address)
            try:
                ray.init(address=address, **kw)
            except Exception as e:  # noqa: BLE001 - any connection failure becomes one clear message
                raise RayEngineError(
                    f"cannot join the Ray cluster at {address} ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}). "
                    "Start it first (`ray start --head` on the head node), pass the address it printed "
                    "(HOST:6379, or ray://HOST:10001 for Ray Client), and make sure this machine has the "
                    "cluster's auth token (RAY_AUTH_TOKEN or ~/.ray/auth_token) and the same Ray and Python versions."
                ) from None
        else:
            num_cpus = settings.get("num_cpus") or max(os.cpu_count() or 1, min_cpus)
            store = int(float(settings.get("object_store_memory_mb") or 512) * 2**20)
            ray.init(num_cpus=int(num_cpus), include_dashboard=False, object_store_memory=store,
                     _temp_dir=str(settings["temp_dir"]) if settings.get("temp_dir") else None,
                     _node_ip_address="127.0.0.1", **kw)
        started = True
    res = ray.cluster_resources()
    try:
        addr = ray.get_runtime_context().gcs_address
    except Exception:  # noqa: BLE001
        addr = address or "local"
    return _Cluster(started, str(addr), float(res.get("CPU", 0)), float(res.get("GPU", 0)))


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (Ray itself keeps retrying for minutes)."""
    hostport = address.split("://", 1)[-1]
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as e:
        raise RayEngineError(
            f"no Ray cluster answers at {address} ({e.__class__.__name__}: {e}). Start one with "
            "`ray start --head --port 6379` on the head node and pass --address HEAD_IP:6379, "
            "or leave out --address to start a local cluster for this run."
        ) from None


def plan_workers(cluster: _Cluster, settings: dict, device: str, runtime: str) -> tuple[int, str, float, float]:
    """(workers, actor device, CPUs per actor, GPUs per actor) for this cluster."""
    cpus = float(settings.get("cpus_per_worker") or 1)
    gpus_each = float(settings.get("gpus_per_worker") or 1)
    if device not in ("auto", "cpu", "cuda"):
        raise PolicytagError(f"--device must be auto, cpu or cuda with --engine ray, got {device!r}")
    use_gpu = runtime in ("torch", "auto") and (device == "cuda" or (device == "auto" and cluster.gpus > 0))
    if use_gpu and cluster.gpus <= 0:
        raise RayEngineError("--device cuda asked for but the Ray cluster has no GPUs; use --device cpu or auto, "
                             "or start the nodes with their GPUs (`ray start ... --num-gpus N`)")
    n = settings.get("num_workers")
    if n is None:
        n = int(cluster.gpus // gpus_each) if use_gpu else int(cluster.cpus // cpus)
    n = int(n)
    if n < 1:
        raise RayEngineError(f"--num-workers must be at least 1 (the cluster has {cluster.cpus:g} CPUs, "
                             f"{cluster.gpus:g} GPUs; ray.cpus_per_worker={cpus:g})")
    return n, ("cuda" if use_gpu else "cpu"), cpus, (gpus_each if use_gpu else 0.0)


def _model_blob(model_dir: Path, runtime: str) -> dict[str, bytes]:
    files = {}
    for p in sorted(model_dir.rglob("*")):
        rel = p.relative_to(model_dir)
        if p.is_file() and (runtime != "torch" or rel.parts[0] != "onnx"):
            files[str(rel)] = p.read_bytes()
    return files


def _policytag_error_in(e: BaseException) -> PolicytagError | None:
    """The user-fixable error at the root of a Ray exception chain, if any."""
    seen = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, PolicytagError):
            return cur
        cur = getattr(cur, "cause", None) or cur.__cause__ or cur.__context__
    return None


# --------------------------------------------------------------------------- run


def _items(files, skips_keyed, settings: dict, progress: bool,
           limits: dict | None = None) -> tuple[list[dict], list[str]]:
    """Work items in input order; clause .jsonl files (and, without shared storage, documents) are read here."""
    chunk = max(1, int(settings.get("chunk_clauses") or 256))
    items: list[dict] = []
    read_here: list[str] = []

    def add_chunks(fidx: int, clauses: list[Clause]) -> None:
        for s in range(0, len(clauses), chunk):
            payload = json.dumps([c.to_dict(labels=False) for c in clauses[s:s + chunk]], ensure_ascii=False)
            items.append({"item": len(items), "file": fidx, "kind": "clauses", "path": "", "abspath": "",
                          "clauses": payload})

    if not settings.get("shared_storage", True):
        local: list = []
        clauses, read = batch.collect_clauses(files, local, progress=progress, limits=limits)
        skips_keyed.extend((0, i, s) for i, s in enumerate(local))
        add_chunks(-1, clauses)  # doc ids already made unique by collect_clauses
        return items, read
    for fidx, f in enumerate(files):
        if f.kind == "clauses":
            local = []
            got = batch.read_clause_jsonl(f.path, local)
            skips_keyed.extend((fidx, i, s) for i, s in enumerate(local))
            if got:
                read_here.append(str(f.path))
                add_chunks(fidx, got)
        else:
            items.append({"item": len(items), "file": fidx, "kind": "document", "path": str(f.path),
                          "abspath": str(f.path.resolve()), "clauses": ""})
    return items, read_here


def run_predict_ray(opts: batch.PredictOptions, *, address: str | None = None, num_workers: int | None = None,
                    fmt: str | None = None, settings: dict | None = None, console: Any = None) -> RayBatchResult:
    """Run a whole ``predict`` batch on Ray and write the outputs (see the module docstring)."""
    t0 = time.perf_counter()
    settings = dict(settings or ray_settings())
    if address is not None:
        settings["address"] = address
    if num_workers is not None:
        settings["num_workers"] = num_workers
    mode, out_path, shard_format = resolve_output(opts.output, fmt, settings)
    _check_options(opts, settings)
    console = console or batch._console()
    # inputs before any model or cluster work: an output that is one of them stops the run here
    outputs = [out_path, tagging.summary_path(out_path)] if mode == "file" else [out_path]
    files, expand_skips = batch.expand_inputs(opts.inputs, exclude=outputs)
    if mode == "file":
        check_writable(out_path)
    from policytag.modeling.classifier import read_metadata

    model_dir = tagging.resolve_model_dir(opts.model).resolve()
    meta = read_metadata(model_dir)  # a clear error here rather than in every actor
    if opts.runtime == "onnx":  # the ONNX files and their version checks, before any cluster work
        tagging.load_model(model_dir, runtime=opts.runtime, onnx_variant=opts.onnx_variant, onnx_threads=1)
    result = RayBatchResult(model_dir=str(model_dir), model_version=str(meta.get("version", "")),
                            shard_format=shard_format)

    keyed: list[tuple[int, int, batch.Skip]] = []  # (file index, order, skip): sorted into the local order
    items, read_here = _items(files, keyed, settings, opts.progress, opts.limits)
    index = {str(f.path): i for i, f in enumerate(files)}
    files_read: dict[int, str] = {index[p]: p for p in read_here}  # file index -> path, for the report
    kinds = [f.kind for f in files]

    clause_rows: list[dict] = []
    summary = SummaryCounts()
    tmp_dir: Path | None = None
    writer: ShardWriter | None = None
    prov_buf: list[dict] = []
    if mode == "dir":
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp"))
        assert shard_format is not None  # resolve_output gives one for a directory
        writer = ShardWriter(tmp_dir, shard_format, int(settings.get("shard_rows") or 100_000))

    def emit(row: dict) -> None:
        if mode == "file":
            clause_rows.append(row)
            return
        assert writer is not None  # mode "dir"
        summary.add(row)
        if opts.level == "clause":
            writer.add([row])
        else:  # provisions never cross documents: aggregate each run of one document
            if prov_buf and prov_buf[-1].get("doc_id") != row.get("doc_id"):
                writer.add(tagging.aggregate_provisions(prov_buf))
                prov_buf.clear()
            prov_buf.append(row)

    try:
        t1 = time.perf_counter()
        if items:
            n_clauses = _run_pipeline(items, files, kinds, settings, opts, model_dir, result, keyed, files_read,
                                      emit, console)
        else:
            n_clauses = 0
        result.seconds_tagging = time.perf_counter() - t1
        result.clauses = n_clauses
        result.skipped = list(expand_skips) + [s for _, _, s in sorted(keyed, key=lambda k: (k[0], k[1]))]
        result.files_read = [files_read[i] for i in sorted(files_read)]

        if mode == "file":
            _write_file_output(result, opts, clause_rows, out_path)
        else:
            assert writer is not None and tmp_dir is not None  # mode "dir"
            _write_dir_output(result, opts, writer, prov_buf, summary, tmp_dir, out_path, shard_format, n_clauses)
            tmp_dir = None  # moved into place
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    result.seconds_total = time.perf_counter() - t0
    return result


def _check_options(opts: batch.PredictOptions, settings: dict) -> None:
    if opts.level not in ("clause", "provision"):
        raise PolicytagError(f"--level must be 'clause' or 'provision', got {opts.level!r}")
    if opts.batch_size is not None and opts.batch_size < 1:
        raise PolicytagError(f"--batch-size must be at least 1, got {opts.batch_size}")
    if settings.get("num_workers") is not None and int(settings["num_workers"]) < 1:
        raise PolicytagError(f"--num-workers must be at least 1, got {settings['num_workers']}")


def _write_file_output(result: RayBatchResult, opts: batch.PredictOptions, clause_rows: list[dict],
                       out_path: Path) -> None:
    """``--output`` is a file: all rows (and the summary) written from this process."""
    rows = tagging.aggregate_provisions(clause_rows) if opts.level == "provision" else clause_rows
    result.rows = rows
    result.n_rows = len(rows)
    tagging.write_rows(rows, out_path)
    result.output = out_path
    if opts.summary:
        result.summary = tagging.write_summary(clause_rows, tagging.summary_path(out_path))


def _write_dir_output(result: RayBatchResult, opts: batch.PredictOptions, writer: ShardWriter,
                      prov_buf: list[dict], summary: SummaryCounts, tmp_dir: Path, out_path: Path,
                      shard_format: str | None, n_clauses: int) -> None:
    """``--output`` is a directory: close the shards, write the summary and the manifest in
    ``tmp_dir``, then move it to ``out_path``."""
    if prov_buf:
        writer.add(tagging.aggregate_provisions(prov_buf))
    shards = writer.close()
    if opts.summary:
        tagging.write_summary(summary.rows(), tmp_dir / SUMMARY)
    manifest = {
        "engine": "ray", "format": shard_format, "level": opts.level, "rows": writer.rows, "clauses": n_clauses,
        "shards": [p.name for p in shards], "summary": SUMMARY if opts.summary else None,
        "model_dir": result.model_dir, "model_version": result.model_version,
        "inputs_read": result.files_read,
        "skipped": [{"path": s.path, "reason": s.reason, "failed": s.failed} for s in result.skipped],
        "workers": result.workers, "device": result.device,
        "created_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
    atomic_write_text(tmp_dir / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    normal_permissions(tmp_dir)  # mkdtemp made it 0700
    if out_path.is_dir() and not any(out_path.iterdir()):
        out_path.rmdir()
    os.replace(tmp_dir, out_path)
    result.output = out_path
    result.shards = [out_path / p.name for p in shards]
    result.manifest = out_path / MANIFEST
    result.summary = out_path / SUMMARY if opts.summary else None
    result.n_rows = writer.rows


def _run_pipeline(items, files, kinds, settings, opts, model_dir: Path, result: RayBatchResult, keyed,
                  files_read: dict, emit, console) -> int:
    want = settings.get("num_workers")
    cpus_each = float(settings.get("cpus_per_worker") or 1)
    cluster = connect(settings.get("address"), settings,
                      min_cpus=int(math.ceil(int(want) * cpus_each)) if want else 1)
    import ray

    try:
        workers, device, cpus, gpus = plan_workers(cluster, settings, opts.device, opts.runtime)
        per_call = max(1, int(settings.get("docs_per_call") or 4))
        workers = min(workers, math.ceil(len(items) / per_call))  # no idle model copies for a small input
        if workers * cpus > cluster.cpus and cluster.cpus > 0:
            console.print(f"[yellow]warning: {workers} workers x {cpus:g} CPUs > the cluster's {cluster.cpus:g} CPUs: "
                          "the extra workers wait until nodes join (lower --num-workers)[/]")
        result.workers, result.device, result.address = workers, device, cluster.address
        if opts.progress:
            console.print(f"Ray cluster {cluster.address}: {cluster.cpus:g} CPUs, {cluster.gpus:g} GPUs; "
                          f"{workers} worker(s) on {device}, {len(items)} item(s)")
        return _stream(items, files, kinds, settings, opts, model_dir, workers, device, cpus, gpus, keyed,
                       files_read, emit)
    except PolicytagError:
        raise
    except Exception as e:  # noqa: BLE001
        cause = _policytag_error_in(e)
        if cause is not None:  # e.g. a model that cannot load on a node: the message says what to do
            raise cause.with_traceback(None) from None
        raise
    finally:
        if cluster.started:
            ray.shutdown()


def _stream(items, files, kinds, settings, opts, model_dir: Path, workers, device, cpus, gpus, keyed,
            files_read: dict, emit) -> int:
    import ray
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled": ours shows
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
    ctx.execution_options.preserve_order = True  # results in input order, as the local path writes them
    ctx.enable_progress_bars = False
    blob = None
    if not settings.get("shared_storage", True):
        blob = [ray.put(_model_blob(model_dir, opts.runtime))]
    per_call = max(1, int(settings.get("docs_per_call") or 4))
    try:
        source = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / per_call)))
        ds = source.map_batches(
            TaggerWorker,
            batch_size=per_call,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cpus,
            num_gpus=gpus or None,
            fn_constructor_kwargs={
                "model_dir": str(model_dir), "runtime": opts.runtime, "device": device,
                "onnx_variant": opts.onnx_variant, "onnx_threads": opts.onnx_threads,
                "batch_size": opts.batch_size, "threads": int(max(1, cpus)), "model_blob": blob,
                "limits": opts.limits,
            },
        )
        bar = _ItemBar(len(items)) if opts.progress else None
        doc_seen: Counter = Counter()
        cur_file, rename = None, None
        n_clauses = 0
        last_item = -1
        order = 0
        try:
            tbl: Any  # a pyarrow.Table (batch_format="pyarrow")
            for tbl in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                for rec in tbl.to_pylist():
                    if rec.get("error"):
                        raise RayEngineError(f"a Ray worker could not start: {rec['error']}")
                    if rec["row"] is None:
                        order += 1
                        keyed.append((rec["file"], order, batch.Skip(rec["skip_path"], rec["skip_reason"])))
                    else:
                        row = json.loads(rec["row"])
                        f = rec["file"]
                        if f != cur_file:
                            cur_file, rename = f, None
                            if f >= 0 and kinds[f] == "document":
                                files_read[f] = str(files[f].path)
                                rename = _doc_rename(row.get("doc_id", ""), doc_seen)
                        if rename is not None:
                            _apply_rename(row, *rename)
                        n_clauses += 1
                        emit(row)
                    if bar is not None and rec["item"] != last_item:
                        bar.update(rec["item"] + 1, n_clauses)
                    last_item = rec["item"]
            if bar is not None:
                bar.update(len(items), n_clauses)
        finally:
            if bar is not None:
                bar.close()
        return n_clauses
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved


def _doc_rename(base: str, seen: Counter) -> tuple[str, str] | None:
    """The local path's rule (:func:`batch._unique_doc_id`): the 2nd file named ``x`` becomes ``x-2``."""
    seen[base] += 1
    return None if seen[base] == 1 else (base, f"{base}-{seen[base]}")


def _apply_rename(row: dict, base: str, new: str) -> None:
    if row.get("doc_id") == base:
        row["doc_id"] = new
        cid = row.get("clause_id") or ""
        if cid.startswith(base):
            row["clause_id"] = new + cid[len(base):]


class _ItemBar:
    """Progress of the cluster run: items (documents / clause chunks) done, clauses, clauses/s."""

    def __init__(self, n: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.t0 = time.perf_counter()
        self.progress = Progress(TextColumn("[bold]tagging on Ray"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("items · {task.fields[clauses]} clauses · {task.fields[rate]} clauses/s"),
                                 TimeElapsedColumn(), console=batch._console())
        self.task = self.progress.add_task("ray", total=n, clauses=0, rate="-")
        self.progress.start()

    def update(self, done: int, clauses: int) -> None:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        self.progress.update(self.task, completed=done, clauses=clauses, rate=f"{clauses / dt:.1f}")

    def close(self) -> None:
        self.progress.stop()


# --------------------------------------------------------------------------- report


def print_report(result: RayBatchResult, console: Any = None, level: str = "clause") -> None:
    """The local path's final report, plus the workers and, for a directory output, the shards."""
    console = console or batch._console()
    if result.workers:
        console.print(f"[bold]ray[/] {result.workers} worker(s) on {result.device} at {result.address}")
    if result.shards is None:
        batch.print_report(result, console, level)
        return
    shown = copy.copy(result)
    shown.output, shown.summary = None, None
    batch.print_report(shown, console, level)
    what = "provisions" if level == "provision" else "clauses"
    console.print(f"[bold]wrote[/] {result.n_rows} {what} in {len(result.shards)} {result.shard_format} shard(s) "
                  f"to {result.output}/ (+ {MANIFEST}" + (f", {SUMMARY})" if result.summary else ")"))
