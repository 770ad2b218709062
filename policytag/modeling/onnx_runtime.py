"""ONNX export and an ONNX Runtime classifier with the same API as ``PolicyClassifier``.

``policytag export-onnx MODEL_DIR`` writes, inside the model directory::

    MODEL_DIR/onnx/model.onnx        encoder + head -> sigmoid probabilities (fp32)
    MODEL_DIR/onnx/model.int8.onnx   the same, int8 dynamic quantization (weights int8,
                                     activations quantized on the fly): the fast CPU path
    MODEL_DIR/onnx/onnx.json         what was exported, and how well it agrees with PyTorch

Batch and sequence axes are dynamic, so the runtime pads each (length-sorted) batch only
to its own longest clause, exactly as the PyTorch path does. The tokenizer and the input
rules (prefixes, context pairs, max length) are those of the model directory, reused.

:class:`OnnxClassifier` (``predict_proba`` / ``predict`` / ``label_ids`` / ``thresholds``)
needs only onnxruntime, the tokenizer and numpy at run time, not torch.
"""

from __future__ import annotations

import json
import os
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from policytag.errors import ModelNotFoundError, PolicytagError

ONNX_SUBDIR = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
ONNX_META_FILE = "onnx.json"
VARIANT_FILES = {"fp32": FP32_FILE, "int8": INT8_FILE}
DEFAULT_OPSET = 17


class OnnxExportError(PolicytagError):
    """The model cannot be exported (wrong backend, exporter failure)."""


# --------------------------------------------------------------------------- export


@dataclass
class ExportResult:
    directory: Path
    files: dict[str, Path]
    agreement: dict[str, float] = field(default_factory=dict)  # variant -> share of clauses with identical labels
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    n_check: int = 0
    seconds: float = 0.0


def onnx_dir(model_dir: str | os.PathLike) -> Path:
    return Path(model_dir) / ONNX_SUBDIR


def _export_settings() -> dict:
    try:
        from policytag.config import load_config

        return dict(load_config("predict").get("onnx") or {})
    except PolicytagError:
        return {}


class _ProbabilityNet:
    """Builds the torch module exported: the classifier network followed by a sigmoid."""

    @staticmethod
    def build(net, input_names: Sequence[str]):
        import torch

        names = list(input_names)

        class ProbabilityNet(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, *inputs):
                kw = dict(zip(names, inputs))
                return torch.sigmoid(self.net(**kw)["logits"].float())

        return ProbabilityNet().eval()


def export_onnx(model_dir: str | os.PathLike, output_dir: str | os.PathLike | None = None, *,
                opset: int | None = None, quantize: bool = True, check: bool = True,
                check_clauses: Sequence[Any] | None = None, n_check: int | None = None,
                settings: dict | None = None, recheck_margin: float | None = None) -> ExportResult:
    """Export a transformer model directory to ONNX (fp32 and int8) and check it against PyTorch.

    ``check`` runs both ONNX files and PyTorch on ``check_clauses`` (default: the shipped
    gold clauses, else the shipped source documents segmented) and records the share of
    clauses whose labels agree. The directory is written atomically.
    """
    t0 = time.perf_counter()
    from policytag.modeling.classifier import PolicyClassifier, read_metadata, write_dir_atomic

    model_dir = Path(model_dir)
    meta = read_metadata(model_dir)
    if meta.get("backend") != "transformer":
        raise OnnxExportError(
            f"{model_dir} holds a {meta.get('backend')!r} model; ONNX export is for transformer models. "
            "The baseline backend already runs without torch: use `policytag predict` without --runtime onnx."
        )
    settings = _export_settings() if settings is None else dict(settings)
    opset = int(opset or settings.get("opset") or DEFAULT_OPSET)
    model = PolicyClassifier.from_pretrained(model_dir)
    out_dir = Path(output_dir) if output_dir else onnx_dir(model_dir)
    result = ExportResult(directory=out_dir, files={})

    sample = model.encode(["加强科普基础设施建设。", "到2025年,建设省级科普基地350家以上。"], return_tensors="pt")
    input_names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
    wrapped = _ProbabilityNet.build(_cpu_eager(model.net), input_names)
    args = tuple(sample[k].cpu() for k in input_names)

    def fill(tmp: Path) -> None:
        fp32 = tmp / FP32_FILE
        _torch_export(wrapped, args, fp32, input_names, opset)
        files = {"fp32": FP32_FILE}
        qinfo = None
        if quantize:
            qinfo = quantize_int8(fp32, tmp / INT8_FILE, settings)
            files["int8"] = INT8_FILE
        info = {
            "source_model_version": model.version,
            "source_model_dir": str(model_dir.resolve()),
            "files": files,
            "inputs": input_names,
            "output": "probs",
            "opset": opset,
            "quantization": qinfo,
            "exporter": "torch.onnx.export (TorchScript-based, dynamo=False)",
            "torch": _version("torch"),
            "onnxruntime": _version("onnxruntime"),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if check:
            clauses = list(check_clauses) if check_clauses is not None else default_check_clauses(n_check or settings.get("n_check", 300))
            if clauses:
                ref = model.predict_proba(clauses)
                ref_lab = ref >= model.thresholds[None, :]
                checks = {}
                margin = _recheck_default() if recheck_margin is None else float(recheck_margin)
                runs = [(v, f, 0.0) for v, f in files.items()]
                if margin > 0 and "int8" in files:
                    runs.append(("int8+recheck", files["int8"], margin))
                for variant, fname, m in runs:
                    clf = OnnxClassifier._from_files(model_dir, tmp / fname, meta, variant.split("+")[0],
                                                     recheck_margin=m)
                    got = clf.predict_proba(clauses)
                    agree = float(np.mean(np.all((got >= model.thresholds[None, :]) == ref_lab, axis=1)))
                    result.agreement[variant] = agree
                    result.max_abs_diff[variant] = float(np.max(np.abs(got - ref)))
                    checks[variant] = {"label_agreement": round(agree, 4),
                                       "max_abs_prob_diff": round(result.max_abs_diff[variant], 5)}
                    if m:
                        checks[variant].update(recheck_margin=m, rechecked=clf.last_rechecked)
                result.n_check = len(clauses)
                info["check"] = {"n_clauses": len(clauses), **checks}
        from policytag.modeling.classifier import sha256_file

        info["checksums"] = {name: sha256_file(tmp / name) for name in sorted(files.values())}
        (tmp / ONNX_META_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
        result.files = {k: out_dir / v for k, v in files.items()}

    write_dir_atomic(out_dir, fill)
    result.seconds = time.perf_counter() - t0
    return result


def _cpu_eager(net):
    """The network on CPU in eval mode, with eager attention (the cleanest graph to export)."""
    net = net.to("cpu").eval()
    enc = getattr(net, "encoder", None)
    setter = getattr(enc, "set_attn_implementation", None)
    if callable(setter):
        try:
            setter("eager")
        except Exception:  # noqa: BLE001 - older/newer transformers: keep the default attention
            pass
    return net


def _torch_export(module, args, path: Path, input_names: Sequence[str], opset: int) -> None:
    import torch

    dyn = {n: {0: "batch", 1: "sequence"} for n in input_names}
    dyn["probs"] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes are expected with dynamic axes
        try:
            with torch.inference_mode(False), torch.no_grad():
                torch.onnx.export(module, args, str(path), input_names=list(input_names), output_names=["probs"],
                                  dynamic_axes=dyn, opset_version=opset, dynamo=False)
        except Exception as e:  # noqa: BLE001
            raise OnnxExportError(f"ONNX export failed ({type(e).__name__}: {e})") from e


QUANT_METHODS = ("blockwise", "dynamic")


def _quant_args(settings: dict) -> dict:
    method = str(settings.get("method", "blockwise"))
    if method not in QUANT_METHODS:
        raise PolicytagError(f"onnx.method must be one of {', '.join(QUANT_METHODS)}, got {method!r}")
    if method == "blockwise":
        return {"method": "blockwise", "op": "MatMulNBits", "bits": 8,
                "block_size": int(settings.get("block_size", 32)), "accuracy_level": 4,
                "description": "int8 weights in blocks along the input dimension; activations quantized "
                               "to int8 per block at run time (accuracy_level 4: int8 compute)"}
    return {"method": "dynamic", "op": "MatMulInteger", "weights": "QInt8",
            "per_channel": bool(settings.get("per_channel", True)),
            "reduce_range": bool(settings.get("reduce_range", False)),
            "op_types": list(settings.get("op_types", ["MatMul"])),
            "description": "onnxruntime.quantization.quantize_dynamic: int8 weights, activations "
                           "quantized per tensor at run time"}


def quantize_int8(fp32_path: str | os.PathLike, int8_path: str | os.PathLike, settings: dict | None = None) -> dict:
    """Int8 dynamic quantization of the dense layers; returns what was done (for ``onnx.json``).

    ``method: blockwise`` (default) uses ONNX Runtime's ``MatMulNBits`` with 8-bit weights in
    blocks of 32 and int8 compute: activations are quantized per block of 32 values at run
    time, which copes with the few very large activations of E5/XLM-R encoders (the GELU
    outputs reach 150x their standard deviation). ``method: dynamic`` is the classic
    ``quantize_dynamic`` (one activation scale per tensor); on the bundled E5 it moved many
    more labels, see the README.
    """
    qa = _quant_args(settings or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if qa["method"] == "blockwise":
            _quantize_blockwise(fp32_path, int8_path, qa)
        else:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8,
                             per_channel=qa["per_channel"], reduce_range=qa["reduce_range"],
                             op_types_to_quantize=qa["op_types"])
    return qa


def _quantize_blockwise(fp32_path, int8_path, qa: dict) -> None:
    import logging

    import onnx

    try:
        from onnxruntime.quantization import matmul_nbits_quantizer as nbits
    except ImportError as e:  # onnx-ir missing
        raise OnnxExportError(
            f"blockwise int8 quantization needs the onnx-ir package ({e}); `pip install onnx-ir`, "
            "or export with --set onnx.method=dynamic"
        ) from None
    model = onnx.load(str(fp32_path))
    cfg = nbits.DefaultWeightOnlyQuantConfig(block_size=qa["block_size"], is_symmetric=True,
                                             accuracy_level=qa["accuracy_level"], bits=qa["bits"])
    quantizer = nbits.MatMulNBitsQuantizer(model, bits=qa["bits"], block_size=qa["block_size"], is_symmetric=True,
                                           accuracy_level=qa["accuracy_level"], algo_config=cfg)
    log = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        quantizer.process()
    finally:
        log.setLevel(level)
    quantizer.model.save_model_to_file(str(int8_path), use_external_data_format=False)


def default_check_clauses(n: int = 300) -> list:
    """Clauses to compare ONNX with PyTorch on: the shipped gold clauses, else segmented sources."""
    from policytag import paths

    clauses: list = []
    try:
        if paths.GOLD_FILE.exists():
            from policytag.clause import load_clauses

            clauses = load_clauses(paths.GOLD_FILE)
    except PolicytagError:
        clauses = []
    if not clauses:
        try:
            from policytag.text.ingestion import load_document
            from policytag.text.segmentation import segment

            for p in sorted(paths.SOURCES_DIR.glob("*.txt")):
                clauses.extend(segment(load_document(p)))
        except (ImportError, PolicytagError):
            clauses = []
    if len(clauses) > n:  # an even spread over all documents
        step = len(clauses) / n
        clauses = [clauses[int(i * step)] for i in range(n)]
    return clauses


def _version(mod: str) -> str:
    try:
        return __import__(mod).__version__
    except Exception:  # noqa: BLE001
        return "?"


# --------------------------------------------------------------------------- runtime


def _base():
    from policytag.modeling.classifier import PolicyClassifier

    return PolicyClassifier


def _session(onnx_path: Path, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        raise ModelNotFoundError(f"{onnx_path} cannot be loaded by ONNX Runtime ({e}); run `policytag export-onnx` again") from None


class OnnxClassifier(_base()):
    """A ``PolicyClassifier`` whose network runs in ONNX Runtime (CPU).

    Same inputs, thresholds, label order and ``predict`` as the PyTorch model it was
    exported from; ``version`` is that model's version.

    With ``recheck_margin > 0`` (int8 only), a clause whose int8 probability for some label
    lies within the margin of that label's threshold is computed again with the fp32
    export, so that quantization noise cannot flip a label decided by a hair; the count is
    in ``last_rechecked``.
    """

    backend = "onnx"

    def __init__(self, session, tokenizer, label_ids, thresholds=None, metadata=None, variant: str = "int8",
                 recheck_margin: float = 0.0, fp32_path: Path | None = None, threads: int | None = None):
        super().__init__(label_ids, thresholds, metadata)
        self.session = session
        self.tokenizer = tokenizer
        self.variant = variant
        self.input_names = [i.name for i in session.get_inputs()]
        self.recheck_margin = float(recheck_margin or 0.0) if variant == "int8" and fp32_path else 0.0
        self._fp32_path = fp32_path
        self._fp32_session = None
        self._threads = threads
        self.last_rechecked = 0
        self.metadata["runtime"] = f"onnxruntime-{variant}" + (
            f"+fp32-recheck({self.recheck_margin:g})" if self.recheck_margin else "")
        inp = self.metadata.setdefault("input", {})
        inp.setdefault("use_context", True)
        inp.setdefault("max_length", 256)

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, variant: str = "int8", threads: int | None = None,
                        recheck_margin: float | None = None, **_) -> "OnnxClassifier":
        """Load ``MODEL_DIR/onnx/model.int8.onnx`` (or ``model.onnx`` with ``variant="fp32"``).

        ``recheck_margin`` defaults to ``predict.onnx_recheck_margin`` of ``configs/predict.yaml``.
        """
        from policytag.modeling.classifier import read_metadata, validate_metadata, verify_checksums

        model_dir = Path(model_dir)
        if model_dir.name == ONNX_SUBDIR and (model_dir.parent / "policytag.json").exists():
            model_dir = model_dir.parent
        meta = read_metadata(model_dir)
        validate_metadata(meta, model_dir)
        verify_checksums(model_dir, meta)  # the tokenizer and config the ONNX graph is run with
        if meta.get("backend") != "transformer":
            raise ModelNotFoundError(
                f"{model_dir} holds a {meta.get('backend')!r} model; --runtime onnx is for transformer models "
                "(the baseline already runs without torch: drop --runtime onnx)."
            )
        if variant not in VARIANT_FILES:
            raise PolicytagError(f"ONNX variant must be one of {', '.join(VARIANT_FILES)}, got {variant!r}")
        path = onnx_dir(model_dir) / VARIANT_FILES[variant]
        if not path.exists():
            raise ModelNotFoundError(
                f"no ONNX export in {model_dir} ({path.name} missing); run `policytag export-onnx {model_dir}` first"
            )
        info = onnx_dir(model_dir) / ONNX_META_FILE
        if info.exists():
            verify_checksums(onnx_dir(model_dir), json.loads(info.read_text(encoding="utf-8")))
            src = json.loads(info.read_text(encoding="utf-8")).get("source_model_version")
            if src is not None and str(src) != str(meta.get("version", "unversioned")):
                raise ModelNotFoundError(
                    f"the ONNX export in {model_dir} was made from model version {src}, but the directory now "
                    f"holds {meta.get('version')}; run `policytag export-onnx {model_dir}` again"
                )
        if recheck_margin is None:
            recheck_margin = _recheck_default()
        obj = cls._from_files(model_dir, path, meta, variant, threads=threads, recheck_margin=recheck_margin)
        obj.model_dir = model_dir.resolve()
        return obj

    @classmethod
    def _from_files(cls, model_dir: Path, onnx_path: Path, meta: dict, variant: str,
                    threads: int | None = None, recheck_margin: float = 0.0) -> "OnnxClassifier":
        from transformers import AutoTokenizer

        from policytag.modeling.classifier import thresholds_from_meta

        session = _session(onnx_path, threads)
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
        except (OSError, ValueError) as e:
            raise ModelNotFoundError(f"{model_dir}: cannot read the tokenizer ({e})") from None
        label_ids = meta["label_ids"]
        fp32 = Path(onnx_path).with_name(FP32_FILE)
        return cls(session, tokenizer, label_ids, thresholds_from_meta(meta, label_ids), meta, variant=variant,
                   recheck_margin=recheck_margin if fp32.exists() else 0.0, fp32_path=fp32, threads=threads)

    def predict_proba(self, clauses, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        from policytag.modeling.classifier import as_pairs, context_fields

        pairs = as_pairs(clauses, context_fields(self.metadata.get("input") or {}))
        n = len(pairs)
        self.last_rechecked = 0
        if n == 0:
            return np.zeros((0, len(self.label_ids)), dtype=np.float32)
        bs = int(batch_size or (self.metadata.get("config", {}) or {}).get("predict", {}).get("batch_size", 32))
        out = self._run(self.session, pairs, range(n), bs, progress)
        if self.recheck_margin > 0:
            near = np.flatnonzero(np.any(np.abs(out - self.thresholds[None, :]) < self.recheck_margin, axis=1))
            if len(near):
                if self._fp32_session is None:
                    self._fp32_session = _session(self._fp32_path, self._threads)
                out[near] = self._run(self._fp32_session, pairs, near, bs, False)[near]
                self.last_rechecked = int(len(near))
        from policytag.modeling.classifier import check_finite

        return check_finite(out, self)

    def _run(self, session, pairs, rows, bs: int, progress: bool) -> np.ndarray:
        """Probabilities for ``pairs[rows]`` in length-sorted batches (other rows stay zero)."""
        from policytag.modeling.classifier import encode_pairs

        order = sorted(rows, key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        batches = [order[i:i + bs] for i in range(0, len(order), bs)]
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="predicting (onnx)", unit="batch")
        out = np.zeros((len(pairs), len(self.label_ids)), dtype=np.float32)
        names = [i.name for i in session.get_inputs()]
        for idx in batches:
            enc = encode_pairs(self.tokenizer, [pairs[i] for i in idx], self.input_config, return_tensors="np")
            feed = {k: np.asarray(enc[k], dtype=np.int64) for k in names}
            out[idx] = session.run(["probs"], feed)[0]
        return out

    @property
    def input_config(self) -> dict:
        return self.metadata["input"]

    def save_pretrained(self, model_dir):  # noqa: D401
        raise PolicytagError("an ONNX classifier is saved by `policytag export-onnx` from its PyTorch model directory")


def _recheck_default() -> float:
    try:
        from policytag.config import load_config

        return float((load_config("predict").get("predict") or {}).get("onnx_recheck_margin") or 0.0)
    except PolicytagError:
        return 0.0


def onnx_info(model_dir: str | os.PathLike) -> dict | None:
    p = onnx_dir(model_dir) / ONNX_META_FILE
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU(s)"
