"""The fast runtime: ONNX export with int8 quantization, and an ONNX Runtime classifier.

``policytag train`` writes it into every transformer model directory (``policytag
export-onnx MODEL_DIR`` writes it for an older one)::

    MODEL_DIR/model.safetensors      the PyTorch weights (the only copy of the fp32 weights)
    MODEL_DIR/onnx/model.onnx        encoder + head -> sigmoid probabilities, fp32: the graph
                                     only; its weights are read from ../model.safetensors
    MODEL_DIR/onnx/model.int8.onnx   the same with int8 dense layers (the int8 weights are in
                                     this file, the other weights again read from ../model.safetensors)
    MODEL_DIR/onnx/onnx.json         what was exported, and how well it agrees with PyTorch

Int8 (``onnx.method: smooth-dynamic``, the default): ``quantize_dynamic`` (int8 weights
per output channel, activations quantized per tensor at run time, ONNX Runtime's fused
VNNI kernels) after migrating the few outlier activation channels of the E5 encoder into
the weights (an input channel whose largest activation on calibration clauses exceeds
``smooth_factor`` x the median channel's is divided by that ratio, and the weight row
multiplied by it: the same function in exact arithmetic, a per-tensor activation scale
~10x finer). At run time a clause whose decisions could change if the network's log-odds
moved by ``predict.onnx_recheck_margin`` (carried through the TF-IDF blend; a label crossing
its threshold, or a dimension's gate opening or closing: :func:`recheck_rows`) is computed
again with the fp32 graph, all such clauses together, so quantization noise cannot flip a
label decided by a hair.

Batch and sequence axes are dynamic: clauses are batched by token count, so each batch is
padded only to its own longest clause. :class:`OnnxClassifier` (``predict_proba`` /
``predict`` / ``label_ids`` / ``thresholds``) needs onnxruntime, the ``tokenizers`` library
and numpy at run time: neither torch nor transformers is imported.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import struct
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from policytag.errors import ModelNotFoundError, PolicytagError
from policytag.modeling.decisions import gate_score

ONNX_SUBDIR = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
ONNX_META_FILE = "onnx.json"
WEIGHTS_FILE = "model.safetensors"   # in the model directory; also the external-data name in the graphs
VARIANT_FILES = {"fp32": FP32_FILE, "int8": INT8_FILE}
DEFAULT_OPSET = 17
FORMAT = 2  # 2: weights shared with model.safetensors; 1 (or absent): self-contained files
DEFAULT_RECHECK_MARGIN = 0.3  # log-odds of the network


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
    rechecked: int = 0
    seconds: float = 0.0
    info: dict = field(default_factory=dict)


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

    The graphs read their fp32 weights from ``MODEL_DIR/model.safetensors`` (``onnx.share_weights``,
    default on), so the export adds only the int8 weights to the directory. ``check`` runs
    PyTorch, both ONNX graphs and int8 with the fp32 re-check on ``check_clauses`` (default:
    the shipped gold clauses, else the shipped source documents segmented) and records the
    share of clauses whose labels agree in ``onnx.json``. The directory is written atomically.
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
    share = bool(settings.get("share_weights", True)) and (model_dir / WEIGHTS_FILE).exists()
    model = PolicyClassifier.from_pretrained(model_dir)
    out_dir = Path(output_dir) if output_dir else onnx_dir(model_dir)
    result = ExportResult(directory=out_dir, files={})

    sample = model.encode(["加强科普基础设施建设。", "到2025年,建设省级科普基地350家以上。"], return_tensors="pt")  # type: ignore[attr-defined]  # export_onnx loads a transformer model dir (checked by from_pretrained)
    input_names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
    wrapped = _ProbabilityNet.build(_cpu_eager(model.net), input_names)  # type: ignore[attr-defined]  # as above
    args = tuple(sample[k].cpu() for k in input_names)
    margin = recheck_default() if recheck_margin is None else float(recheck_margin)

    def fill(tmp: Path) -> None:
        import onnx

        full = tmp / "full.fp32.onnx"
        _torch_export(wrapped, args, full, input_names, opset)
        files = {"fp32": FP32_FILE}
        qinfo = None
        if quantize:
            qinfo = quantize_int8(full, tmp / INT8_FILE, settings, model_dir=model_dir, meta=meta)
            files["int8"] = INT8_FILE
        smooth_scales = (qinfo or {}).pop("_smooth_scales", {})
        sharing = {}
        if share:
            index = WeightsIndex(model_dir / WEIGHTS_FILE)
            m = onnx.load(str(full))
            sources = index.sources(m)
            sharing["fp32"] = share_weights(m, model_dir / WEIGHTS_FILE, index=index)
            onnx.save(m, str(tmp / FP32_FILE))
            del m
            full.unlink()
            if "int8" in files:
                m = onnx.load(str(tmp / INT8_FILE))
                derived = (derive_int8_weights(m, index, sources, smooth_scales, derived_file(tmp / INT8_FILE))
                           if settings.get("derive_int8", True) else {})
                sharing["int8"] = {**share_weights(m, model_dir / WEIGHTS_FILE, index=index), **derived}
                onnx.save(m, str(tmp / INT8_FILE))
                del m
                if derived.get("derived"):
                    files["int8_derived"] = derived_file(tmp / INT8_FILE).name
        else:
            os.replace(full, tmp / FP32_FILE)
        info = {
            "format": FORMAT,
            "source_model_version": model.version,
            "source_model_dir": str(model_dir.resolve()),
            "files": files,
            "inputs": input_names,
            "output": "probs",
            "opset": opset,
            "quantization": qinfo,
            "shared_weights": ({"file": WEIGHTS_FILE, **weights_fingerprint(model_dir / WEIGHTS_FILE),
                                "graphs": sharing, "what": "fp32 weights read from model.safetensors; int8 weights "
                                "recomputed from it at load (checked bit for bit at export)"} if share else None),
            "recheck": {"margin": margin, "units": "log-odds", "what": "int8 clauses with a label this close "
                        "to its threshold are computed again in fp32"},
            "exporter": "torch.onnx.export (TorchScript-based, dynamo=False)",
            "torch": _version("torch"),
            "onnxruntime": _version("onnxruntime"),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if check:
            clauses = list(check_clauses) if check_clauses is not None else default_check_clauses(
                n_check or settings.get("n_check", 300))
            if clauses:
                info["check"] = _check(model, model_dir, tmp, files, meta, clauses, margin, result)
        from policytag.modeling.classifier import sha256_file

        info["checksums"] = {name: sha256_file(tmp / name) for name in sorted(files.values())}
        (tmp / ONNX_META_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
        result.files = {k: out_dir / v for k, v in files.items() if k in VARIANT_FILES}
        result.info = info

    write_dir_atomic(out_dir, fill)
    result.seconds = time.perf_counter() - t0
    result.info["seconds"] = round(result.seconds, 1)
    return result


def _check(model, model_dir: Path, tmp: Path, files: dict, meta: dict, clauses, margin: float,
           result: ExportResult) -> dict:
    """Labels of PyTorch vs each ONNX variant (and int8 + fp32 re-check) on ``clauses``."""
    ref = model.predict_proba(clauses)
    presence = model.presence_proba(clauses)  # TF-IDF, exact: the same for every variant
    ref_lab = model.decide(ref, presence)  # labels as predict gives them: thresholds, then the gates
    checks: dict[str, Any] = {"n_clauses": len(clauses)}
    got = {}
    for variant, fname in files.items():
        if variant not in VARIANT_FILES:
            continue
        clf = OnnxClassifier._from_files(model_dir, tmp / fname, meta, variant, recheck_margin=0.0)
        clf.companion = model.companion  # a TF-IDF companion blends in the same way
        got[variant] = clf.predict_proba(clauses)
    if margin > 0 and "int8" in got and "fp32" in files:
        clf = OnnxClassifier._from_files(model_dir, tmp / files["int8"], meta, "int8", recheck_margin=margin)
        clf.companion = model.companion
        got["int8+recheck"] = clf.predict_proba(clauses)  # the runtime's own re-check path
        result.rechecked = int(clf.last_rechecked)
    for variant, p in got.items():
        agree = float(np.mean(np.all(model.decide(p, presence) == ref_lab, axis=1)))
        result.agreement[variant] = agree
        result.max_abs_diff[variant] = float(np.max(np.abs(p - ref)))
        checks[variant] = {"label_agreement": round(agree, 4),
                           "max_abs_prob_diff": round(result.max_abs_diff[variant], 5)}
        if variant == "int8+recheck":
            checks[variant].update(recheck_margin=margin, rechecked=result.rechecked)
    result.n_check = len(clauses)
    return checks


def near_threshold(probs: np.ndarray, thresholds: np.ndarray, margin: float) -> np.ndarray:
    """Rows with some label's log-odds within ``margin`` of its threshold's log-odds (no
    gates, no blend: the simple form of :func:`recheck_rows`).

    Log-odds, not probabilities: int8 noise is roughly additive before the sigmoid, so a
    probability of 0.001 against a threshold of 0.05 is far (-6.9 vs -2.9) although only
    0.05 apart."""
    if margin <= 0 or len(probs) == 0:
        return np.zeros(len(probs), dtype=bool)
    return np.any(np.abs(_logit(probs) - _logit(np.asarray(thresholds)[None, :])) < margin, axis=1)


def recheck_rows(probs: np.ndarray, net: np.ndarray, thresholds: np.ndarray, margin: float,
                 weight: float = 0.0, gates: Sequence[tuple[slice, float | None]] = (),
                 presence: Sequence[np.ndarray | None] = ()) -> np.ndarray:
    """Rows whose decisions could change if the network's log-odds moved by up to ``margin``.

    ``net`` is the network's (int8) probability, ``probs`` the decided one: ``(1 - weight) *
    net + weight * tfidf`` for a blended model (``probs is net`` when not blended). Every
    label's network log-odds is moved to ``± margin``, carried through the blend (a network
    probability near 0 or 1 barely moves the blended one), and a row is re-checked when,
    in some dimension, the gate (``decide``: no label when the gate score is below it) could
    open or close, or the gate is or could be open and a label could cross its threshold. A
    dimension that stays gated shut whatever the noise needs no re-check. ``presence``: per
    entry of ``gates``, the presence probabilities its gate score averages in (TF-IDF, not
    moved by the noise), or None (the score is the highest probability)."""
    n = len(probs)
    if margin <= 0 or n == 0:
        return np.zeros(n, dtype=bool)
    pn = np.clip(np.asarray(net, dtype=np.float64), 1e-7, 1 - 1e-7)
    pb = np.asarray(probs, dtype=np.float64)
    ln = _logit(pn)
    keep = 1.0 - float(weight)
    hi = _logit(pb + keep * (_sigmoid(ln + margin) - pn))
    lo = _logit(pb + keep * (_sigmoid(ln - margin) - pn))
    t = _logit(np.asarray(thresholds))[None, :]
    out = np.zeros(n, dtype=bool)
    dims = list(gates) or [(slice(0, probs.shape[1]), None)]
    pres = list(presence) + [None] * (len(dims) - len(presence))
    for (sl, g), q in zip(dims, pres):
        crosses = np.any((hi[:, sl] >= t[:, sl]) & (lo[:, sl] < t[:, sl]), axis=1)
        if g is None:
            out |= crosses
            continue
        # decide()'s own gate score, at the highest probability moved up and down (it is monotone in it)
        open_hi, open_lo = (gate_score(_sigmoid(hi[:, sl].max(axis=1))[:, None], q) >= float(g),
                            gate_score(_sigmoid(lo[:, sl].max(axis=1))[:, None], q) >= float(g))
        out |= open_hi & (~open_lo | crosses)  # the gate could be open, and could close or a label flip
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


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


# --------------------------------------------------------------------------- shared weights


def _safetensors_header(path: Path) -> tuple[dict, int, bytes]:
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        raw = fh.read(n)
    return json.loads(raw), 8 + n, raw


def weights_fingerprint(path: Path) -> dict:
    """Size and header hash of a safetensors file: the offsets the graphs point at."""
    _, _, raw = _safetensors_header(path)
    return {"size": path.stat().st_size, "header_sha256": hashlib.sha256(raw).hexdigest()}


class WeightsIndex:
    """The float32 tensors of a safetensors file, found by content (as stored, or transposed)."""

    def __init__(self, weights_path: Path):
        self.path = Path(weights_path)
        header, start, _ = _safetensors_header(self.path)
        self.mm = np.memmap(self.path, dtype=np.uint8, mode="r")
        self.index: dict[tuple, tuple[int, int, bool, tuple]] = {}
        for name, spec in header.items():
            if name == "__metadata__" or spec.get("dtype") != "F32":
                continue
            a, b = spec["data_offsets"]
            shape = tuple(spec["shape"])
            arr = self.array(start + a, b - a, shape)
            self.index[(shape, hashlib.sha1(arr.tobytes()).digest())] = (start + a, b - a, False, shape)
            if len(shape) == 2:
                t = np.ascontiguousarray(arr.T)
                self.index.setdefault((t.shape, hashlib.sha1(t.tobytes()).digest()), (start + a, b - a, True, shape))

    def array(self, offset: int, length: int, shape) -> np.ndarray:
        return np.frombuffer(self.mm[offset:offset + length], dtype="<f4").reshape(tuple(shape))

    def find(self, arr: np.ndarray) -> tuple[int, int, bool, tuple] | None:
        """(offset, length, transposed, stored shape) of a tensor equal to ``arr`` (or to its transpose)."""
        return self.index.get((tuple(arr.shape), hashlib.sha1(np.ascontiguousarray(arr).tobytes()).digest()))

    def sources(self, model, min_bytes: int = 4096) -> dict[str, tuple]:
        """``initializer name -> find()`` for the float initializers of ``model`` found in the file."""
        from onnx import TensorProto, numpy_helper

        out = {}
        for init in model.graph.initializer:
            if init.data_type == TensorProto.FLOAT and init.data_location != TensorProto.EXTERNAL:
                arr = numpy_helper.to_array(init)
                if arr.nbytes >= min_bytes:
                    hit = self.find(arr)
                    if hit is not None:
                        out[init.name] = hit
        return out


def _set_external(init, location: str, offset: int = 0, length: int | None = None) -> None:
    from onnx import TensorProto

    init.ClearField("raw_data")
    init.ClearField("float_data")
    init.ClearField("int32_data")
    init.data_location = TensorProto.EXTERNAL
    del init.external_data[:]
    pairs = [("location", location), ("offset", str(offset))] + ([("length", str(length))] if length else [])
    for k, v in pairs:
        e = init.external_data.add()
        e.key, e.value = k, v


def share_weights(model, weights_path: Path, min_bytes: int = 4096, index: WeightsIndex | None = None) -> dict:
    """Point the graph's float initializers at the identical tensors of ``weights_path`` (in place).

    An initializer equal to a stored tensor becomes external data (``location`` =
    ``model.safetensors``, offset and length into that file); one equal to a stored matrix
    transposed (the exporter folds ``Linear`` weights into ``MatMul`` form) reads the stored
    matrix and gets a ``Transpose`` node, which ONNX Runtime folds once at load. Returns
    byte counts."""
    from onnx import TensorProto, helper, numpy_helper

    index = index or WeightsIndex(weights_path)
    shared = embedded = 0
    transposes = []
    for init in model.graph.initializer:
        if init.data_location == TensorProto.EXTERNAL:
            continue
        if init.data_type != TensorProto.FLOAT:
            embedded += len(init.raw_data)
            continue
        arr = numpy_helper.to_array(init)
        hit = index.find(arr) if arr.nbytes >= min_bytes else None
        if hit is None:
            embedded += arr.nbytes
            continue
        offset, length, transposed, stored_shape = hit
        if transposed:
            src_name = init.name + "__stored"
            transposes.append(helper.make_node("Transpose", [src_name], [init.name], perm=[1, 0],
                                               name=init.name + "__transpose"))
            init.name = src_name
            del init.dims[:]
            init.dims.extend(stored_shape)
        _set_external(init, WEIGHTS_FILE, offset, length)
        shared += length
    for node in reversed(transposes):
        model.graph.node.insert(0, node)
    return {"shared_bytes": int(shared), "embedded_bytes": int(embedded), "transposed": len(transposes)}


DERIVED_LOCATION = "policytag-derived-at-load"  # external-data name of the int8 weights recomputed at load


def derived_file(onnx_path: Path) -> Path:
    return Path(onnx_path).with_name(Path(onnx_path).stem + ".derived.npz")


def _int8_from(fp32: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``quantize_dynamic``'s symmetric per-channel int8 of a ``[K, N]`` MatMul weight (channel = column)."""
    q = np.round(fp32.astype(np.float32) / scale.astype(np.float32)[None, :])
    np.clip(q, -128, 127, out=q)
    return q.astype(np.int8)


def derive_int8_weights(model, index: WeightsIndex, sources: dict, smooth_scales: dict, out_file: Path) -> dict:
    """Drop from the int8 graph (in place) every int8 weight that can be recomputed exactly from
    ``model.safetensors`` (+ its smoothing vector and the stored per-channel scales), and write the
    recipe to ``out_file``. Each is recomputed here and compared bit for bit first; a weight
    that does not match stays in the graph. Returns counts."""
    from onnx import TensorProto, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    recipe: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    kept_bytes = 0
    for name, init in inits.items():
        if not name.endswith("_quantized") or init.data_type != TensorProto.INT8 or len(init.dims) != 2:
            continue
        base = name[: -len("_quantized")]
        src = sources.get(base)
        scale_t, zp_t = inits.get(base + "_scale"), inits.get(base + "_zero_point")
        if src is None or scale_t is None or zp_t is None:
            kept_bytes += len(init.raw_data)
            continue
        q_stored = numpy_helper.to_array(init)
        scale = numpy_helper.to_array(scale_t).astype(np.float32).reshape(-1)
        if np.any(numpy_helper.to_array(zp_t) != 0) or scale.shape[0] != q_stored.shape[1]:
            kept_bytes += q_stored.nbytes
            continue
        offset, length, transposed, shape = src
        w = index.array(offset, length, shape)
        a = w.T if transposed else w
        sm = smooth_scales.get(base)
        if sm is not None:
            a = (a * sm[:, None]).astype(np.float32)
        if not np.array_equal(_int8_from(a, scale), q_stored):
            kept_bytes += q_stored.nbytes
            continue
        k = f"w{len(recipe)}"
        recipe[name] = {"key": k, "offset": offset, "length": length, "shape": list(shape), "transposed": transposed,
                        "smooth": sm is not None}
        arrays[f"{k}_scale"] = scale
        if sm is not None:
            arrays[f"{k}_smooth"] = np.asarray(sm, dtype=np.float32)
        _set_external(init, DERIVED_LOCATION)
    if recipe:
        np.savez(out_file, recipe=np.array(json.dumps(recipe)), **arrays)  # type: ignore[arg-type]  # numpy stub types **kwds of savez as bool
    return {"derived": len(recipe), "derived_bytes": int(sum(int(np.prod(r["shape"])) for r in recipe.values())),
            "stored_int8_bytes": int(kept_bytes)}


def derived_initializers(onnx_path: Path, weights: Path | None) -> tuple[list[str], list]:
    """(names, arrays) of the int8 weights an int8 graph recomputes at load (empty when none)."""
    f = derived_file(onnx_path)
    if not f.exists():
        return [], []
    if weights is None or not weights.exists():
        raise ModelNotFoundError(f"{onnx_path} recomputes its int8 weights from model.safetensors, which is missing")
    z = np.load(f)
    recipe = json.loads(str(z["recipe"]))
    mm = np.memmap(weights, dtype=np.uint8, mode="r")
    names, arrays = [], []
    for name, r in recipe.items():
        w = np.frombuffer(mm[r["offset"]:r["offset"] + r["length"]], dtype="<f4").reshape(r["shape"])
        a = w.T if r["transposed"] else w
        if r["smooth"]:
            a = (a * z[r["key"] + "_smooth"][:, None]).astype(np.float32)
        names.append(name)
        arrays.append(np.ascontiguousarray(_int8_from(a, z[r["key"] + "_scale"])))
    return names, arrays


# --------------------------------------------------------------------------- int8


QUANT_METHODS = ("smooth-dynamic", "dynamic", "blockwise")


def _quant_args(settings: dict) -> dict:
    method = str(settings.get("method", "smooth-dynamic"))
    if method not in QUANT_METHODS:
        raise PolicytagError(f"onnx.method must be one of {', '.join(QUANT_METHODS)}, got {method!r}")
    if method == "blockwise":
        return {"method": "blockwise", "op": "MatMulNBits", "bits": 8,
                "block_size": int(settings.get("block_size", 32)), "accuracy_level": 4,
                "description": "int8 weights in blocks along the input dimension; activations quantized "
                               "to int8 per block at run time (accuracy_level 4: int8 compute)"}
    qa = {"method": method, "op": "MatMulInteger (fused: DynamicQuantizeMatMul)", "weights": "QInt8",
          "per_channel": bool(settings.get("per_channel", True)),
          "reduce_range": bool(settings.get("reduce_range", False)),
          "op_types": list(settings.get("op_types", ["MatMul"])),
          "exclude": list(settings.get("exclude") or []),
          "description": "onnxruntime.quantization.quantize_dynamic: int8 weights per output channel, "
                         "activations quantized per tensor at run time"}
    if method == "smooth-dynamic":
        qa["smooth_factor"] = float(settings.get("smooth_factor", 4.0))
        qa["n_calibration"] = int(settings.get("n_calibration", 200))
        qa["description"] = str(qa["description"]) + ("; before that, activation channels whose calibration maximum exceeds "
                              f"{qa['smooth_factor']:g}x the median channel's are scaled down by that ratio "
                              "and the weight rows up (outlier migration)")
    return qa


def quantize_int8(fp32_path: str | os.PathLike, int8_path: str | os.PathLike, settings: dict | None = None, *,
                  model_dir: str | os.PathLike | None = None, meta: dict | None = None) -> dict:
    """Int8 quantization of the dense layers; returns what was done (for ``onnx.json``).

    ``smooth-dynamic`` (default) needs ``model_dir`` (tokenizer, input rules) for the
    calibration clauses; see the module docstring. ``dynamic`` is plain ``quantize_dynamic``;
    ``blockwise`` is ONNX Runtime's ``MatMulNBits`` with 8-bit weights in blocks of 32
    (robust, but on AVX-512 VNNI no faster than fp32 at these shapes)."""
    qa = _quant_args(settings or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if qa["method"] == "blockwise":
            _quantize_blockwise(fp32_path, int8_path, qa)
            return qa
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        import onnx

        src: Any = str(fp32_path)
        if qa["method"] == "smooth-dynamic":
            if model_dir is None:
                raise PolicytagError("onnx.method smooth-dynamic needs the model directory (calibration inputs)")

            m = onnx.load(str(fp32_path))
            qa["smoothed"] = smooth_outliers(m, Path(model_dir), meta, qa["smooth_factor"], qa["n_calibration"])
            qa["_smooth_scales"] = qa["smoothed"].pop("scales")
            src = m
        log = logging.getLogger()
        level = log.level
        log.setLevel(logging.ERROR)  # "please consider pre-processing" is not for us
        try:
            quantize_dynamic(src, str(int8_path), weight_type=QuantType.QInt8, per_channel=qa["per_channel"],
                             reduce_range=qa["reduce_range"], op_types_to_quantize=qa["op_types"],
                             nodes_to_exclude=qa["exclude"] or None,
                             extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})
        finally:
            log.setLevel(level)
    return qa


def calibration_clauses(n: int = 200) -> list:
    """Clauses for activation statistics: the shipped corpus documents segmented (not the gold
    clauses the export is checked on), evenly spread; the gold clauses when there is no corpus."""
    return list(_calibration_clauses(int(n)))


@functools.lru_cache(maxsize=4)
def _calibration_clauses(n: int) -> tuple:
    from policytag import paths

    out: list = []
    corpus = paths.SOURCES_DIR / "corpus"
    try:
        from policytag.text.ingestion import load_source
        from policytag.text.segmentation import segment

        if corpus.is_dir():
            for d in sorted(p for p in corpus.iterdir() if p.is_dir()):
                try:
                    out.extend(segment(load_source(d)))
                except PolicytagError:
                    continue
    except ImportError:  # pragma: no cover
        out = []
    if not out:
        out = default_check_clauses(n)
    if len(out) > n:
        step = len(out) / n
        out = [out[int(i * step)] for i in range(n)]
    return tuple(out)


def smooth_outliers(model, model_dir: Path, meta: dict | None, factor: float, n_calibration: int) -> dict:
    """Migrate outlier activation channels into the weights of the MatMuls that read them (in place).

    For each activation feeding MatMuls with constant weights ``W [K, N]``: per input channel
    the largest ``|x|`` on the calibration clauses (padding excluded); channels above
    ``factor`` x the median get ``s = max / (factor x median)``; the activation is multiplied
    by ``1/s`` (one ``Mul`` node) and row ``k`` of each ``W`` by ``s``: the same function."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from policytag.modeling.classifier import as_pairs, read_metadata
    from policytag.modeling.fast_runtime import FastTokenizer

    meta = read_metadata(model_dir) if meta is None else meta
    inits = {t.name: t for t in model.graph.initializer}
    groups: dict[str, list] = {}
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits and len(inits[node.input[1]].dims) == 2:
            groups.setdefault(node.input[0], []).append(node)
    if not groups:
        return {"groups": 0, "channels": 0, "scales": {}}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = list(groups)
    for nm in names:
        probe.graph.output.append(helper.make_tensor_value_info(nm, TensorProto.FLOAT, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    del probe
    tok = FastTokenizer.from_dir(model_dir)
    inp_cfg = dict(meta.get("input") or {})
    feeds_names = [i.name for i in sess.get_inputs()]
    pairs = as_pairs(calibration_clauses(n_calibration))
    pairs.sort(key=lambda p: len(p[0]) + len(p[1]))
    amax = {nm: None for nm in names}
    for i in range(0, len(pairs), 16):
        feed = tok.encode(pairs[i:i + 16], inp_cfg, feeds_names)
        valid = feed["attention_mask"].reshape(-1).astype(bool)
        for nm, out in zip(names, sess.run(names, feed)):
            v = np.abs(out.reshape(-1, out.shape[-1])[valid]).max(axis=0)
            amax[nm] = v if amax[nm] is None else np.maximum(amax[nm], v)  # type: ignore[call-overload]  # amax[nm] is an array once set
    del sess
    n_channels = 0
    muls = []
    scales: dict[str, np.ndarray] = {}
    for nm, group in groups.items():
        a = np.maximum(amax[nm], 1e-6)  # type: ignore[call-overload]  # every group has seen a batch
        s = np.maximum(1.0, a / (factor * np.median(a))).astype(np.float32)
        if not np.any(s > 1.0):
            continue
        n_channels += int(np.sum(s > 1.0))
        inv = numpy_helper.from_array((1.0 / s).astype(np.float32), nm.strip("/").replace("/", "_") + "__smooth")
        model.graph.initializer.append(inv)
        out = nm + "__smoothed"
        for node in group:
            node.input[0] = out
            scales[node.input[1]] = s
            w = numpy_helper.to_array(inits[node.input[1]])
            inits[node.input[1]].CopyFrom(numpy_helper.from_array((w * s[:, None]).astype(np.float32),
                                                                  node.input[1]))
        muls.append((group[0], helper.make_node("Mul", [nm, inv.name], [out], name=nm + "__smooth_mul")))
    nodes = list(model.graph.node)
    first = {id(g): nodes.index(g) for g, _ in muls}
    for g, mul in sorted(muls, key=lambda gm: -first[id(gm[0])]):
        model.graph.node.insert(first[id(g)], mul)
    return {"groups": len(muls), "channels": n_channels, "factor": factor, "calibration_clauses": len(pairs),
            "scales": scales}


def _quantize_blockwise(fp32_path, int8_path, qa: dict) -> None:
    import logging

    import onnx

    try:
        from onnxruntime.quantization import matmul_nbits_quantizer as nbits
    except ImportError as e:  # onnx-ir missing
        raise OnnxExportError(
            f"blockwise int8 quantization needs the onnx-ir package ({e}); `pip install onnx-ir`, "
            "or export with --set onnx.method=smooth-dynamic"
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
    if n and len(clauses) > n:  # an even spread over all documents
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


def _session(onnx_path: Path, threads: int | None = None, weights: Path | None = None,
             disabled_optimizers: Sequence[str] = ()):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
    keep: list = []
    if weights is not None:  # the graphs' external data "model.safetensors" is the model dir's file
        mm = np.memmap(weights, dtype=np.uint8, mode="r")
        opts.add_external_initializers_from_files_in_memory([WEIGHTS_FILE], [mm], [len(mm)])
        keep.append(mm)
    names, arrays = derived_initializers(Path(onnx_path), weights)
    if names:
        values = [ort.OrtValue.ortvalue_from_numpy(a) for a in arrays]
        opts.add_external_initializers(names, values)
        keep += arrays + values  # ONNX Runtime may use these buffers for the session's lifetime
    try:
        sess = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=list(disabled_optimizers) or None)
    except Exception as e:  # noqa: BLE001
        raise ModelNotFoundError(f"{onnx_path} cannot be loaded by ONNX Runtime ({e}); "
                                 "run `policytag export-onnx` again") from None
    sess._policytag_buffers = keep
    return sess


def stale_reason(model_dir: Path, info: dict, meta: dict) -> str | None:
    """Why the export in ``model_dir/onnx`` does not belong to the model there (None: it does)."""
    src = info.get("source_model_version")
    if src is not None and str(src) != str(meta.get("version", "unversioned")):
        return (f"its ONNX export was made from model version {src}, but the directory now holds "
                f"{meta.get('version')}")
    shared = info.get("shared_weights")
    if shared:
        w = Path(model_dir) / shared.get("file", WEIGHTS_FILE)
        if not w.exists():
            return f"{w.name} is missing"
        fp = weights_fingerprint(w)
        if fp["size"] != shared.get("size") or fp["header_sha256"] != shared.get("header_sha256"):
            return f"{w.name} changed after the ONNX export"
    return None


class OnnxClassifier(_base()):  # type: ignore[misc]  # the base class is resolved lazily (torch-free import)
    """A ``PolicyClassifier`` whose network runs in ONNX Runtime (CPU), without torch.

    Same inputs, thresholds, label order and ``predict`` as the PyTorch model it was
    exported from; ``version`` is that model's version.

    With ``recheck_margin > 0`` (int8 only), every clause of a ``predict_proba`` call whose
    int8 probability for some label lies within the margin (log-odds) of that label's
    threshold is computed again with the fp32 graph (all of them together, length-sorted);
    the count is in ``last_rechecked``.
    """

    backend = "onnx"
    chunk_size = 512  # the tagging service hands this many clauses per call (re-checks batch across them)

    def __init__(self, session, tokenizer, label_ids, thresholds=None, metadata=None, variant: str = "int8",
                 recheck_margin: float = 0.0, fp32_path: Path | None = None, threads: int | None = None,
                 weights: Path | None = None):
        super().__init__(label_ids, thresholds, metadata)
        self.session = session
        self.tokenizer = tokenizer
        self.variant = variant
        self.input_names = [i.name for i in session.get_inputs()]
        self.recheck_margin = float(recheck_margin or 0.0) if variant == "int8" and fp32_path else 0.0
        self._fp32_path = fp32_path
        self._fp32_session = None
        self._threads = threads
        self._weights = weights
        self.last_rechecked = 0
        self.batch_size: int | None = None  # set: clauses per ONNX Runtime call whatever the caller asks
        self.metadata["runtime"] = f"onnxruntime-{variant}" + (
            f"+fp32-recheck({self.recheck_margin:g} log-odds)" if self.recheck_margin else "")
        inp = self.metadata.setdefault("input", {})
        inp.setdefault("use_context", True)
        inp.setdefault("max_length", 256)

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, variant: str = "int8", threads: int | None = None,
                        recheck_margin: float | None = None, batch_size: int | None = None,
                        **_) -> "OnnxClassifier":
        """Load ``MODEL_DIR/onnx/model.int8.onnx`` (or ``model.onnx`` with ``variant="fp32"``).

        ``recheck_margin`` defaults to ``predict.onnx_recheck_margin``, ``batch_size`` (clauses per
        ONNX Runtime call, used whatever batch size ``predict_proba`` is given; 0: the given one)
        to ``predict.onnx_batch_size`` of ``configs/predict.yaml``.
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
        info = onnx_info(model_dir)
        if info:
            verify_checksums(onnx_dir(model_dir), info)
            problem = stale_reason(model_dir, info, meta)
            if problem:
                raise ModelNotFoundError(f"{model_dir}: {problem}; run `policytag export-onnx {model_dir}` again")
        if recheck_margin is None:
            recheck_margin = recheck_default()
        obj = cls._from_files(model_dir, path, meta, variant, threads=threads, recheck_margin=recheck_margin)
        obj.batch_size = batch_size_default() if batch_size is None else (int(batch_size) or None)
        obj.model_dir = model_dir.resolve()
        from policytag.modeling.classifier import attach_companion

        attach_companion(obj, model_dir, meta)
        return obj

    @classmethod
    def _from_files(cls, model_dir: Path, onnx_path: Path, meta: dict, variant: str,
                    threads: int | None = None, recheck_margin: float = 0.0) -> "OnnxClassifier":
        from policytag.modeling.classifier import thresholds_from_meta
        from policytag.modeling.fast_runtime import FastTokenizer

        onnx_path = Path(onnx_path)
        weights_file = Path(model_dir) / WEIGHTS_FILE
        weights = weights_file if weights_file.exists() else None  # the graphs may read their weights from it
        session = _session(onnx_path, threads, weights)
        tokenizer = FastTokenizer.from_dir(model_dir)
        label_ids = meta["label_ids"]
        fp32 = onnx_path.with_name(FP32_FILE)
        return cls(session, tokenizer, label_ids, thresholds_from_meta(meta, label_ids), meta, variant=variant,
                   recheck_margin=recheck_margin if fp32.exists() else 0.0, fp32_path=fp32, threads=threads,
                   weights=weights)

    def predict_proba(self, clauses, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        from policytag.modeling.classifier import as_pairs, context_fields

        pairs = as_pairs(clauses, context_fields(self.metadata.get("input") or {}))
        n = len(pairs)
        self.last_rechecked = 0
        if n == 0:
            return np.zeros((0, len(self.label_ids)), dtype=np.float32)
        bs = int(self.batch_size or batch_size
                 or (self.metadata.get("config", {}) or {}).get("predict", {}).get("batch_size", 32))
        clauses = list(clauses)
        net = self._run(self.session, pairs, bs, progress)
        out = self.blend(net, clauses)
        if self.recheck_margin > 0:  # decisions int8 noise could change: the network part again in fp32
            w = self.companion_weight if self.companion is not None else 0.0
            near = np.flatnonzero(recheck_rows(out, net, self.thresholds, self.recheck_margin, w,
                                               self.dimension_gates(), self.gate_presence(clauses)))
            if len(near):
                fp32 = self._run(self.fp32_session(), [pairs[i] for i in near], bs, False)
                out[near] = fp32 if w <= 0 else (out[near] - (1 - w) * net[near]) + (1 - w) * fp32
                self.last_rechecked = int(len(near))
        from policytag.modeling.classifier import check_finite

        return check_finite(out, self)

    def fp32_session(self):
        """The fp32 graph's session (opened at the first re-check)."""
        if self._fp32_session is None:
            self._fp32_session = _session(self._fp32_path, self._threads, self._weights)
        return self._fp32_session

    ENCODE_CHUNK = 1024  # pairs tokenized together (then sorted by token count and cut into batches)

    def _run(self, session, pairs, bs: int, progress: bool) -> np.ndarray:
        """Probabilities for ``pairs``, in the input order, from batches of clauses of equal
        token count (each padded only to its own longest clause).

        Pairs are taken in order of character length in chunks of ``ENCODE_CHUNK``, each chunk
        tokenized at once and sorted by its token counts, so a batch wastes almost no padding
        (characters are a rough guide to tokens: sorting by them left 16 % padding)."""
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        chunks = [order[i:i + self.ENCODE_CHUNK] for i in range(0, len(order), self.ENCODE_CHUNK)]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=sum(-(-len(c) // bs) for c in chunks), desc="predicting (onnx)", unit="batch")
        out = np.zeros((len(pairs), len(self.label_ids)), dtype=np.float32)
        names = [i.name for i in session.get_inputs()]
        for chunk in chunks:
            enc = self.tokenizer.encode([pairs[i] for i in chunk], self.input_config, names)
            lens = enc["attention_mask"].sum(axis=1)
            by_len = np.argsort(lens, kind="stable")
            ids = np.asarray(chunk)
            for k in range(0, len(by_len), bs):
                sel = by_len[k:k + bs]
                width = int(lens[sel].max())
                out[ids[sel]] = session.run(["probs"], {nm: enc[nm][sel, :width] for nm in names})[0]
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        return out

    @property
    def input_config(self) -> dict:
        return self.metadata["input"]

    def save_pretrained(self, model_dir):  # noqa: D401
        raise PolicytagError("an ONNX classifier is saved by `policytag export-onnx` from its PyTorch model directory")


def _predict_setting(key: str):
    try:
        from policytag.config import load_config

        return (load_config("predict").get("predict") or {}).get(key)
    except PolicytagError:
        return None


def recheck_default() -> float:
    """``predict.onnx_recheck_margin`` of ``configs/predict.yaml`` (log-odds)."""
    v = _predict_setting("onnx_recheck_margin")
    return DEFAULT_RECHECK_MARGIN if v is None else float(v)


def batch_size_default() -> int | None:
    """``predict.onnx_batch_size`` of ``configs/predict.yaml`` (None: the caller's batch size)."""
    v = _predict_setting("onnx_batch_size")
    return int(v) if isinstance(v, int) and v > 0 else None


_recheck_default = recheck_default  # the old name


def onnx_info(model_dir: str | os.PathLike) -> dict | None:
    p = onnx_dir(model_dir) / ONNX_META_FILE
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def onnx_size_mb(model_dir: str | os.PathLike) -> float:
    d = onnx_dir(model_dir)
    return sum(p.stat().st_size for p in d.glob("*") if p.is_file()) / 1e6 if d.is_dir() else 0.0


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU(s)"
