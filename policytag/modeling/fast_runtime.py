"""The fast CPU runtime of a model directory: what it is, when it is used, how it is written.

Every transformer model directory written by ``policytag train`` (and retraining, and
promotion of a version that lacks one) carries ``MODEL_DIR/onnx/``: the network exported
to ONNX in fp32 and int8 (:mod:`policytag.modeling.onnx_runtime`), sharing the weights of
``model.safetensors`` instead of copying them. On a CPU, ``predict``, ``serve``,
``review-queue`` and the Ray engine run it by default (``predict.runtime: auto``): int8
for every clause, then fp32 again for the few clauses with a probability near a
threshold, so the labels are PyTorch's. Torch and transformers are not imported on that
path: the tokenizer is read with the ``tokenizers`` library (:class:`FastTokenizer`, the
same ids as the transformers tokenizer, checked by the tests) and the network runs in
ONNX Runtime.

:func:`choose_runtime` decides, for ``runtime="auto"``: PyTorch on a GPU (or for the
TF-IDF baseline, which is torch-free anyway), the fast runtime on a CPU when the model
directory has an up-to-date one, else PyTorch with a one-line notice saying how to add it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from policytag.errors import PolicytagError

RUNTIMES = ("auto", "torch", "onnx")
_NOTICED: set[str] = set()


# --------------------------------------------------------------------------- tokenizer


class FastTokenizer:
    """The model directory's ``tokenizer.json`` through the ``tokenizers`` library (no torch,
    no transformers), encoding ``(text, context)`` pairs exactly as
    :func:`policytag.modeling.classifier.encode_pairs` does."""

    def __init__(self, tokenizer, pad_id: int, pad_type_id: int = 0):
        self.tok = tokenizer
        self.pad_id = int(pad_id)
        self.pad_type_id = int(pad_type_id)
        self.tok.no_padding()
        self._trunc: tuple | None = ("unset",)

    @classmethod
    def from_dir(cls, model_dir: str | os.PathLike) -> "FastTokenizer":
        from tokenizers import Tokenizer

        from policytag.errors import ModelNotFoundError

        d = Path(model_dir)
        path = d / "tokenizer.json"
        if not path.exists():
            raise ModelNotFoundError(f"{d}: tokenizer.json is missing; retrain the model")
        tok = Tokenizer.from_file(str(path))
        pad_token = None
        cfg = d / "tokenizer_config.json"
        if cfg.exists():
            try:
                pad_token = json.loads(cfg.read_text(encoding="utf-8")).get("pad_token")
            except json.JSONDecodeError:
                pad_token = None
            if isinstance(pad_token, dict):
                pad_token = pad_token.get("content")
        pad_id = tok.token_to_id(pad_token) if pad_token else None
        if pad_id is None:
            mc = d / "config.json"
            pad_id = (json.loads(mc.read_text(encoding="utf-8")).get("pad_token_id") if mc.exists() else None) or 0
        return cls(tok, pad_id)

    def _truncation(self, max_length: int | None, strategy: str = "longest_first") -> None:
        key = (max_length, strategy)
        if key == self._trunc:
            return
        if max_length is None:
            self.tok.no_truncation()
        else:
            self.tok.enable_truncation(max_length, strategy=strategy)
        self._trunc = key

    def encode(self, pairs: Sequence[tuple[str, str]], input_cfg: dict, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Padded int64 arrays ``{name: [n, longest]}`` for ``names`` (input_ids, attention_mask,
        token_type_ids)."""
        max_length = int(input_cfg.get("max_length", 256))
        tp = input_cfg.get("text_prefix") or ""
        cp = input_cfg.get("context_prefix") or ""
        texts = [tp + t for t, _ in pairs]
        use_ctx = bool(input_cfg.get("use_context", True))
        if not use_ctx or not any(c for _, c in pairs):
            self._truncation(max_length)
            encs = self.tok.encode_batch(texts)
        else:
            contexts = [(cp + c) if c else cp or " " for _, c in pairs]
            self._truncation(None)
            lens = [len(e.ids) for e in self.tok.encode_batch(texts)]
            room = [max_length - n - 3 >= 4 and bool(c) for n, (_, c) in zip(lens, pairs)]
            self._truncation(max_length, "only_second")
            if all(room):
                encs = self.tok.encode_batch(list(zip(texts, contexts)))
            else:
                encs = [None] * len(pairs)
                both = [i for i, ok in enumerate(room) if ok]
                alone = [i for i, ok in enumerate(room) if not ok]
                for i, e in zip(both, self.tok.encode_batch([(texts[i], contexts[i]) for i in both]) if both else []):
                    encs[i] = e
                self._truncation(max_length)
                for i, e in zip(alone, self.tok.encode_batch([texts[i] for i in alone])):
                    encs[i] = e
        n = len(encs)
        width = max(len(e.ids) for e in encs) if encs else 0
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        types = np.full((n, width), self.pad_type_id, dtype=np.int64)
        for r, e in enumerate(encs):
            k = len(e.ids)
            ids[r, :k] = e.ids
            mask[r, :k] = 1
            types[r, :k] = e.type_ids
        out = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {k: out[k] for k in names}


# --------------------------------------------------------------------------- choosing


def fast_runtime_status(model_dir: str | os.PathLike, meta: dict | None = None) -> tuple[bool, str]:
    """(usable, why not) for the fast runtime of ``model_dir``."""
    from policytag.modeling import onnx_runtime as ox
    from policytag.modeling.classifier import read_metadata

    d = Path(model_dir)
    meta = read_metadata(d) if meta is None else meta
    if meta.get("backend") != "transformer":
        return False, f"a {meta.get('backend')} model needs none"
    info = ox.onnx_info(d)
    if info is None or not all((ox.onnx_dir(d) / f).exists() for f in (info.get("files") or {}).values()) \
            or not (ox.onnx_dir(d) / ox.INT8_FILE).exists():
        return False, "it has no fast runtime (onnx/)"
    problem = ox.stale_reason(d, info, meta)
    return (problem is None), (problem or "")


def gpu_present() -> bool:
    """Is a CUDA GPU usable? Answered without importing torch when the machine has no NVIDIA
    device at all (the common CPU case), so the fast path stays torch-free."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if not any(os.path.exists(p) for p in ("/dev/nvidia0", "/proc/driver/nvidia/version", "/dev/nvidiactl")):
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def choose_runtime(model_dir: str | os.PathLike, runtime: str = "auto", device: str = "auto",
                   meta: dict | None = None) -> tuple[str, str]:
    """(``"torch"`` or ``"onnx"``, a notice or ""): what ``runtime`` means for this model and device."""
    if runtime not in RUNTIMES:
        raise PolicytagError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime != "auto":
        return runtime, ""
    from policytag.modeling.classifier import read_metadata

    meta = read_metadata(model_dir) if meta is None else meta
    if meta.get("backend") != "transformer":
        return "torch", ""
    dev = str(device or "auto")
    if dev.startswith("cuda") or (dev == "auto" and gpu_present()):
        return "torch", ""
    ok, why = fast_runtime_status(model_dir, meta)
    if ok:
        return "onnx", ""
    return "torch", (f"note: {model_dir}: {why}; using PyTorch (slower on a CPU). "
                     f"`policytag export-onnx {model_dir}` writes it.")


def notice(msg: str) -> None:
    """Print a one-line notice once per process (stderr)."""
    if msg and msg not in _NOTICED:
        _NOTICED.add(msg)
        print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- writing


def write_settings() -> dict:
    """The ``onnx`` section of ``configs/predict.yaml``."""
    try:
        from policytag.config import load_config

        return dict(load_config("predict").get("onnx") or {})
    except PolicytagError:
        return {}


def write_fast_runtime(model_dir: str | os.PathLike, *, progress: bool = False, check: bool = True,
                       settings: dict | None = None) -> Any:
    """Export ``MODEL_DIR/onnx/`` (fp32 + int8 sharing ``model.safetensors``), check it against
    PyTorch and record the agreement in ``onnx.json``. Returns the ExportResult."""
    from policytag.modeling.onnx_runtime import export_onnx

    res = export_onnx(model_dir, check=check, settings=settings)
    if progress:
        used = res.agreement.get("int8+recheck", res.agreement.get("int8"))
        agree = f"; labels = PyTorch on {used:.1%} of {res.n_check} clauses" if used is not None else ""
        print(f"fast runtime written to {res.directory} ({res.seconds:.0f} s{agree})", flush=True)
    return res


def after_training(model_dir: str | os.PathLike, *, progress: bool = True) -> Any:
    """Called at the end of training: write the fast runtime into the new model directory
    (``onnx.write_at_training`` in ``configs/predict.yaml``, default on). A failure is
    reported and leaves a model that runs with PyTorch; it never fails the training."""
    from policytag.modeling.classifier import read_metadata

    try:
        if read_metadata(model_dir).get("backend") != "transformer":
            return None
        settings = write_settings()
        if not settings.get("write_at_training", True):
            return None
        return write_fast_runtime(model_dir, progress=progress, settings=settings)
    except Exception as e:  # noqa: BLE001 - the model itself is complete; PyTorch still runs it
        print(f"warning: the fast runtime could not be written to {model_dir} ({type(e).__name__}: {e}); "
              f"the model runs with PyTorch. Retry with `policytag export-onnx {model_dir}`.", file=sys.stderr)
        return None


def ensure_fast_runtime(model_dir: str | os.PathLike, *, progress: bool = False) -> bool:
    """Write the fast runtime if the directory lacks an up-to-date one (promotion of older
    versions). True when one is present afterwards."""
    try:
        ok, _ = fast_runtime_status(model_dir)
    except PolicytagError:
        return False
    if ok:
        return True
    from policytag.modeling.classifier import read_metadata

    if read_metadata(model_dir).get("backend") != "transformer":
        return False
    return after_training(model_dir, progress=progress) is not None
