"""The classifier object: load from / save to a directory, predict clause labels.

``PolicyClassifier.from_pretrained(dir)`` reads ``policytag.json`` in the directory and
returns the right backend: :class:`TransformerClassifier` (a fine-tuned encoder with a
17-way sigmoid head, this module) or :class:`~policytag.training.baseline.BaselineClassifier`
(character n-gram TF-IDF + logistic regression). Both share this interface::

    clf = PolicyClassifier.from_pretrained("var/models/v3")
    probs = clf.predict_proba(clauses)          # [n, 17], order = clf.label_ids
    preds = clf.predict(clauses)                # list[Prediction] using clf.thresholds
    clf.save_pretrained("elsewhere")            # atomic

Inputs may be :class:`~policytag.clause.Clause` objects, dicts with ``text`` (and optional
``context``), or plain strings.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from policytag.clause import Clause
from policytag.errors import InputError, ModelNotFoundError, PolicytagError
from policytag.fileio import atomic_write_dir as write_dir_atomic  # noqa: F401 - re-exported

META_FILE = "policytag.json"
METRICS_FILE = "metrics.json"
CARD_FILE = "MODEL_CARD.md"
WEIGHTS_FILE = "model.safetensors"
COMPANION_DIR = "tfidf"  # a TF-IDF model whose probabilities are averaged in (metadata["blend"])
FORMAT_VERSION = 1


@dataclass
class Prediction:
    themes: list[str]
    measures: list[str]
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"themes": list(self.themes), "measures": list(self.measures), "scores": dict(self.scores)}


THEME_IDS = ("youth", "farmers", "workers", "elderly", "officials", "infrastructure")
CONTEXT_FIELDS = ("heading", "title", "genre")
CONTEXT_SEP = " | "


def _field(c: Clause | dict, name: str) -> str:
    key = {"heading": "context", "title": "doc_title", "genre": "genre"}[name]
    v = getattr(c, key, None) if isinstance(c, Clause) else c.get(key)
    return str(v or "")


def compose_context(c: Clause | dict, fields: Sequence[str] = ("heading",)) -> str:
    """The context the model reads next to a clause: the chosen fields in order, joined by
    ``" | "`` (``title`` = document title, ``heading`` = heading path, ``genre``); empty
    fields are left out. The fields are part of a model's recorded input format."""
    unknown = [f for f in fields if f not in CONTEXT_FIELDS]
    if unknown:
        raise InputError(f"unknown context field(s) {unknown}; known: {', '.join(CONTEXT_FIELDS)}")
    return CONTEXT_SEP.join(v for v in (_field(c, f) for f in fields) if v)


def as_pairs(clauses: Iterable[Clause | dict | str], fields: Sequence[str] = ("heading",)) -> list[tuple[str, str]]:
    """Normalize the accepted input kinds to ``(text, context)`` pairs."""
    out = []
    text: Any
    for i, c in enumerate(clauses):
        if isinstance(c, Clause):
            text, ctx = c.text, compose_context(c, fields)
        elif isinstance(c, dict):
            if "text" not in c:
                raise InputError(f"input {i}: a dict needs a 'text' key (and may have 'context', 'doc_title')")
            text, ctx = c.get("text"), compose_context(c, fields)
        elif isinstance(c, str):
            text, ctx = c, ""
        else:
            raise InputError(f"input {i}: expected a Clause, a dict with 'text' or a string, got {type(c).__name__}")
        out.append((str(text or ""), str(ctx or "")))
    return out


def context_fields(input_cfg: dict[str, Any]) -> tuple[str, ...]:
    """A model's context fields; models written before the field existed read the heading path."""
    return tuple(input_cfg.get("context_fields") or ("heading",))


def read_metadata(model_dir: str | os.PathLike) -> dict[str, Any]:
    model_dir = Path(model_dir)
    meta_path = model_dir / META_FILE
    if not model_dir.is_dir():
        raise ModelNotFoundError(
            f"model directory {model_dir} does not exist; train one with `policytag train` "
            "or pass the directory printed by it"
        )
    if not meta_path.exists():
        raise ModelNotFoundError(
            f"{model_dir} is not a policytag model directory (no {META_FILE}); "
            "train one with `policytag train`"
        )
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ModelNotFoundError(f"{meta_path} is damaged ({e.msg}); retrain the model") from None


#: Files of a model directory that are not covered by its checksums: the metadata itself and
#: what is rewritten after saving (the registry's version and model card, retrain reports).
UNCHECKED_FILES = frozenset({META_FILE, METRICS_FILE, CARD_FILE, "retrain.json"})
_NOTICED: set[str] = set()


def sha256_file(path: str | os.PathLike) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_checksums(model_dir: str | os.PathLike) -> dict[str, str]:
    """``{relative path: sha256}`` of the weight, config and tokenizer files of a model directory
    (everything at its top level but :data:`UNCHECKED_FILES`)."""
    d = Path(model_dir)
    return {p.name: sha256_file(p) for p in sorted(d.iterdir()) if p.is_file() and p.name not in UNCHECKED_FILES}


def verify_checksums(model_dir: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Every file recorded in ``meta["checksums"]`` exists and has its sha256. A directory saved
    before checksums were recorded loads with a one-line notice on standard error."""
    from policytag.errors import ModelIntegrityError

    d = Path(model_dir)
    sums = meta.get("checksums")
    if not sums:
        key = str(d.resolve())
        if key not in _NOTICED:
            _NOTICED.add(key)
            import sys

            print(f"notice: {d} has no recorded checksums (saved by an older policytag), so damaged files "
                  "cannot be detected; re-train it to record them", file=sys.stderr)
        return
    if not isinstance(sums, dict):
        raise ModelIntegrityError(f"{d / META_FILE}: 'checksums' must map file names to sha256; re-train the model")
    for name, digest in sums.items():
        f = d / name
        if Path(name).name != name or not f.is_file():
            raise ModelIntegrityError(f"{d}: {name} is missing (its checksum is recorded in {META_FILE}); "
                                      "re-train or restore the model directory")
        if sha256_file(f) != digest:
            raise ModelIntegrityError(f"{d}: {name} does not match its recorded checksum: the file is damaged; "
                                      "re-train or restore it")


def validate_metadata(meta: dict[str, Any], model_dir: str | os.PathLike = "") -> None:
    """``label_ids`` are the taxonomy's (same set) and every label has a threshold in [0, 1]."""
    from policytag.data.taxonomy import load_taxonomy
    from policytag.errors import ModelIntegrityError

    where = f"{Path(model_dir) / META_FILE}" if model_dir else META_FILE
    label_ids = meta.get("label_ids")
    if not isinstance(label_ids, list) or not label_ids or not all(isinstance(x, str) for x in label_ids):
        raise ModelIntegrityError(f"{where}: 'label_ids' must be the list of label ids; re-train the model")
    tax = load_taxonomy()
    missing = [i for i in tax.label_ids if i not in label_ids]
    extra = [i for i in label_ids if i not in tax.label_ids]
    dup = sorted({i for i in label_ids if label_ids.count(i) > 1})
    if missing or extra or dup:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"not in the taxonomy {', '.join(extra)}"] if extra else []) + \
                ([f"repeated {', '.join(dup)}"] if dup else [])
        raise ModelIntegrityError(f"{where}: the model's labels differ from the taxonomy "
                                  f"(version {tax.version}): {'; '.join(parts)}; re-train the model on this taxonomy")
    th = meta.get("thresholds")
    if isinstance(th, list):
        if len(th) != len(label_ids):
            raise ModelIntegrityError(f"{where}: {len(th)} thresholds for {len(label_ids)} labels; re-train the model")
        th = dict(zip(label_ids, th))
    if not isinstance(th, dict):
        raise ModelIntegrityError(f"{where}: no thresholds; re-train the model")
    absent = [i for i in label_ids if i not in th]
    if absent:
        raise ModelIntegrityError(f"{where}: thresholds missing for {len(absent)} of {len(label_ids)} labels "
                                  f"({', '.join(absent)}); re-train the model (or restore {META_FILE})")
    bad = []
    for i in label_ids:
        try:
            v = float(th[i])
        except (TypeError, ValueError):
            v = float("nan")
        if not 0.0 <= v <= 1.0:
            bad.append(f"{i}={th[i]!r}")
    if bad:
        raise ModelIntegrityError(f"{where}: thresholds must be numbers in [0, 1]: {', '.join(bad)}; re-train the model")


def check_finite(probs: np.ndarray, model: Any = None) -> np.ndarray:
    """Refuse NaN or infinite probabilities (damaged weights): no clause gets empty labels silently."""
    probs = np.asarray(probs)
    if probs.size and not np.isfinite(probs).all():
        from policytag.errors import ModelIntegrityError

        n_bad = int((~np.isfinite(probs)).any(axis=1).sum())
        where = getattr(model, "model_dir", None) or "the model"
        raise ModelIntegrityError(f"{where} gives NaN or infinite probabilities for {n_bad} of {len(probs)} clauses: "
                                  "its weights are damaged; re-train or restore the model directory")
    return probs


class PolicyClassifier:
    """Common interface of both backends (see the module docstring)."""

    backend: str = "?"

    def __init__(self, label_ids: Sequence[str], thresholds: Sequence[float] | None = None,
                 metadata: dict[str, Any] | None = None):
        self.label_ids = list(label_ids)
        self.thresholds = (np.full(len(self.label_ids), 0.5, dtype=np.float32) if thresholds is None
                           else np.asarray(thresholds, dtype=np.float32))
        if self.thresholds.shape != (len(self.label_ids),):
            raise ValueError(f"thresholds must have {len(self.label_ids)} values, got {self.thresholds.shape}")
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.metadata.setdefault("backend", self.backend)
        self.metadata.setdefault("label_ids", self.label_ids)
        self.model_dir: Path | None = None
        self.companion: PolicyClassifier | None = None  # see blend()

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, **kwargs) -> "PolicyClassifier":
        """Load a model directory. Refuses (:class:`~policytag.errors.ModelIntegrityError`, one
        line) a file that does not match its recorded sha256, metadata whose labels differ
        from the taxonomy or that lacks thresholds, and weights that cannot be read."""
        meta = read_metadata(model_dir)
        validate_metadata(meta, model_dir)
        verify_checksums(model_dir, meta)
        backend = meta.get("backend")
        if backend == "baseline":
            from policytag.modeling.baseline import BaselineClassifier

            impl: type[BaselineClassifier] | type[TransformerClassifier] = BaselineClassifier
        elif backend == "transformer":
            impl = TransformerClassifier
        else:
            raise ModelNotFoundError(f"{model_dir}: unknown backend {backend!r} in {META_FILE}")
        if cls not in (PolicyClassifier, impl):
            raise ModelNotFoundError(f"{model_dir} holds a {backend} model, not a {cls.__name__}")
        obj = impl._load(Path(model_dir), meta, **kwargs)
        obj.model_dir = Path(model_dir).resolve()
        attach_companion(obj, model_dir, meta)
        return obj

    # -------------------------------------------------------------- metadata
    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unversioned"))

    @property
    def taxonomy_version(self) -> str:
        return str(self.metadata.get("taxonomy_version", ""))

    @property
    def n_themes(self) -> int:
        return int(self.metadata.get("n_themes", 6))

    @property
    def theme_ids(self) -> list[str]:
        return self.label_ids[: self.n_themes]

    @property
    def measure_ids(self) -> list[str]:
        return self.label_ids[self.n_themes:]

    # -------------------------------------------------------------- predicting
    def predict_proba(self, clauses, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        raise NotImplementedError

    @property
    def companion_weight(self) -> float:
        return float((self.metadata.get("blend") or {}).get("tfidf_weight") or 0.0)

    def blend(self, probs: np.ndarray, clauses) -> np.ndarray:
        """``(1 − w) · probs + w · companion(clauses)`` when the model directory holds a TF-IDF
        companion (``metadata["blend"]``, ``model.tfidf_weight`` at training); else ``probs``."""
        w = self.companion_weight
        if self.companion is None or w <= 0 or len(probs) == 0:
            return probs
        return ((1.0 - w) * np.asarray(probs) + w * self.companion.predict_proba(clauses)).astype(np.float32)

    def presence_proba(self, clauses) -> np.ndarray | None:
        """``[n, 2]``: the probability that a clause has any theme / any measure, from the TF-IDF
        part's presence classifiers (:mod:`policytag.modeling.decisions`); None when this model
        has none (no TF-IDF part, or one saved before presence classifiers existed)."""
        comp = self.companion
        if comp is None or self.companion_weight <= 0:
            return None
        return comp.presence_proba(clauses)

    def decide(self, probs: np.ndarray, presence: np.ndarray | None = None) -> np.ndarray:
        """0/1 decisions from probabilities: the per-label thresholds, then the per-dimension
        gates (``metadata["gates"]``: no label of a dimension when its gate score — the highest
        probability, averaged with ``presence`` for the dimensions in ``gates["presence"]`` — is
        below the gate). The one place decisions are made; ``presence`` is
        :meth:`presence_proba` of the same clauses (required when a gate reads it)."""
        from policytag.modeling.decisions import decide

        return decide(probs, self.thresholds, self.n_themes_of_labels(), self.metadata.get("gates") or {},
                      presence)

    def decide_clauses(self, probs: np.ndarray, clauses) -> np.ndarray:
        """:meth:`decide` for ``probs`` of ``clauses``, with the presence probabilities its gates read."""
        from policytag.modeling.decisions import presence_dims

        needs = presence_dims(self.metadata.get("gates"))
        return self.decide(probs, self.presence_proba(clauses) if needs and len(probs) else None)

    def gate_presence(self, clauses) -> list[np.ndarray | None]:
        """Per entry of :meth:`dimension_gates`: the presence probabilities that dimension's gate
        score averages in, or None (its score is the highest probability)."""
        from policytag.modeling.decisions import DIMENSIONS, presence_dims

        dims = presence_dims(self.metadata.get("gates"))
        pres = self.presence_proba(clauses) if dims else None
        return [None if pres is None or dim not in dims else pres[:, d] for d, dim in enumerate(DIMENSIONS)]

    def n_themes_of_labels(self) -> int:
        return int(self.metadata.get("n_themes") or len([i for i in self.label_ids if i in THEME_IDS]))

    def dimension_gates(self) -> list[tuple[slice, float | None]]:
        """``[(columns of the dimension, its gate or None)]`` for themes and measures, as
        :meth:`decide` applies them (no gates: one entry per dimension with None)."""
        from policytag.modeling.decisions import dimension_slices

        gates = self.metadata.get("gates") or {}
        return [(sl, None if gates.get(dim) is None else float(gates[dim]))
                for dim, sl in dimension_slices(self.n_themes_of_labels(), len(self.label_ids))]

    def predict(self, clauses, batch_size: int | None = None, progress: bool = False) -> list[Prediction]:
        clauses = list(clauses)
        probs = self.predict_proba(clauses, batch_size=batch_size, progress=progress)
        dec = self.decide_clauses(probs, clauses)
        themes = set(self.theme_ids)
        out = []
        for p, d in zip(probs, dec):
            on = [lab for lab, flag in zip(self.label_ids, d) if flag]
            out.append(Prediction(
                themes=[lab for lab in on if lab in themes],
                measures=[lab for lab in on if lab not in themes],
                scores={lab: round(float(v), 6) for lab, v in zip(self.label_ids, p)},
            ))
        return out

    # ----------------------------------------------------------------- saving
    def _write_weights(self, tmp: Path) -> None:
        raise NotImplementedError

    def full_metadata(self) -> dict[str, Any]:
        meta = copy.deepcopy(self.metadata)
        meta["format_version"] = FORMAT_VERSION
        meta["backend"] = self.backend
        meta["label_ids"] = self.label_ids
        meta["thresholds"] = {lab: round(float(t), 4) for lab, t in zip(self.label_ids, self.thresholds)}
        return meta

    def save_pretrained(self, model_dir: str | os.PathLike) -> Path:
        """Write weights, ``policytag.json``, ``metrics.json`` and ``MODEL_CARD.md`` atomically."""
        from policytag.modeling.model_card import render_model_card

        meta = self.full_metadata()

        def fill(tmp: Path) -> None:
            self._write_weights(tmp)
            meta["checksums"] = file_checksums(tmp)
            (tmp / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
            (tmp / METRICS_FILE).write_text(
                json.dumps(meta.get("metrics", {}), ensure_ascii=False, indent=2), encoding="utf-8")
            (tmp / CARD_FILE).write_text(render_model_card(meta), encoding="utf-8")

        out = write_dir_atomic(model_dir, fill)
        self.model_dir = out
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.version!r}, labels={len(self.label_ids)})"


def attach_companion(model: "PolicyClassifier", model_dir: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Load the TF-IDF companion a model directory records in ``meta["blend"]`` (checked like
    any model directory); a missing one is an integrity error, not a silent change of labels."""
    blend = meta.get("blend") or {}
    if not blend.get("tfidf_weight"):
        return
    sub = Path(model_dir) / str(blend.get("dir") or COMPANION_DIR)
    if not (sub / META_FILE).exists():
        from policytag.errors import ModelIntegrityError

        raise ModelIntegrityError(f"{model_dir}: the TF-IDF part of this model ({sub.name}/) is missing; "
                                  "restore the whole model directory or retrain")
    from policytag.modeling.baseline import BaselineClassifier

    model.companion = BaselineClassifier.from_pretrained(sub)


def thresholds_from_meta(meta: dict[str, Any], label_ids: Sequence[str]) -> np.ndarray:
    th = meta.get("thresholds") or {}
    if isinstance(th, dict):
        return np.array([float(th.get(lab, 0.5)) for lab in label_ids], dtype=np.float32)
    return np.asarray(th, dtype=np.float32)


# =====================================================================  transformer

def _torch():
    import torch

    return torch


POOLINGS = ("mean", "cls", "mean_text")


def _masked_mean(hidden, mask):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def pool(hidden, attention_mask, pooling: str = "mean", text_mask=None):
    """Sentence vector from token states.

    ``mean``: masked mean of all tokens; ``cls``: the first token; ``mean_text``: the mean of
    all tokens (clause + context) concatenated with the mean of the clause's own tokens
    (first segment), so the head can read the heading path for themes and the clause itself
    for measures.
    """
    if pooling == "cls":
        return hidden[:, 0]
    full = _masked_mean(hidden, attention_mask)
    if pooling == "mean_text":
        tm = attention_mask if text_mask is None else text_mask * attention_mask
        return __import__("torch").cat([full, _masked_mean(hidden, tm)], dim=-1)
    return full


def first_segment_mask(input_ids, sep_token_id: int | None):
    """1 for the tokens up to (not including) the first separator: ``<s>`` + the clause."""
    torch = _torch()
    if sep_token_id is None:
        return torch.ones_like(input_ids)
    return (torch.cumsum((input_ids == sep_token_id).long(), dim=1) == 0).long()


def encoder_layers(encoder):
    """The list of transformer blocks of a BERT-like encoder, or None when its layout is unknown."""
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    return layers if layers is not None and hasattr(encoder, "embeddings") else None


def top_layers_forward(encoder, hidden, attention_mask, start: int):
    """Apply blocks ``start..end`` of a BERT-like encoder to ``hidden`` (the output of block ``start-1``)."""
    from transformers.masking_utils import create_bidirectional_mask

    mask = create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden, attention_mask=attention_mask)
    for layer in encoder_layers(encoder)[start:]:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def bottom_layers_forward(encoder, input_ids, attention_mask, start: int, token_type_ids=None):
    """The input of block ``start`` (embeddings, then blocks ``0..start-1``) without running
    the blocks above it: what a frozen lower part contributes, at ``start/len`` of the cost."""
    from transformers.masking_utils import create_bidirectional_mask

    kw = {"input_ids": input_ids}
    if token_type_ids is not None:
        kw["token_type_ids"] = token_type_ids
    hidden = encoder.embeddings(**kw)
    mask = create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden, attention_mask=attention_mask)
    for layer in encoder_layers(encoder)[:start]:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def build_net(encoder, num_labels: int, pooling: str = "mean", dropout: float = 0.1, pos_weight=None,
              sep_token_id: int | None = None):
    """The classification network: encoder + pooling + dropout + linear head (17 logits)."""
    torch = _torch()
    from torch import nn  # already imported by _torch()

    if pooling not in POOLINGS:
        raise PolicytagError(f"model.pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    width = encoder.config.hidden_size * (2 if pooling == "mean_text" else 1)

    class PolicyTagNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.pooling = pooling
            self.dropout = nn.Dropout(dropout)
            self.sep_token_id = sep_token_id
            self.head = nn.Linear(width, num_labels)
            pw = torch.ones(num_labels) if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32)
            self.register_buffer("pos_weight", pw, persistent=False)
            self.config = encoder.config  # lets Trainer / accelerate find dtype and friends

        def pooled(self, input_ids, attention_mask=None, token_type_ids=None):
            kw = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kw["token_type_ids"] = token_type_ids
            hidden = self.encoder(**kw).last_hidden_state
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            text_mask = first_segment_mask(input_ids, self.sep_token_id) if self.pooling == "mean_text" else None
            return pool(hidden, attention_mask, self.pooling, text_mask)

        def _out(self, pooled, labels):
            logits = self.head(self.dropout(pooled))
            if labels is None:
                return {"logits": logits}
            loss = nn.functional.binary_cross_entropy_with_logits(
                logits.float(), labels.float(), pos_weight=self.pos_weight.to(logits.device))
            return {"loss": loss, "logits": logits}

        def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
            return self._out(self.pooled(input_ids, attention_mask, token_type_ids), labels)

        def forward_from_hidden(self, hidden_states, attention_mask, start: int, labels=None, text_mask=None):
            """Run encoder layers ``start..`` on cached hidden states (output of layer ``start``),
            then pool and classify: the same function as ``forward`` when the lower layers are frozen.
            ``text_mask`` marks the clause's own tokens (needed by ``mean_text`` pooling)."""
            hidden = top_layers_forward(self.encoder, hidden_states, attention_mask, start)
            return self._out(pool(hidden, attention_mask, self.pooling, text_mask), labels)

    return PolicyTagNet()


class TransformerClassifier(PolicyClassifier):
    """A fine-tuned transformer encoder with a multi-label sigmoid head."""

    backend = "transformer"

    def __init__(self, net, tokenizer, label_ids, thresholds=None, metadata=None, device: str | None = None):
        super().__init__(label_ids, thresholds, metadata)
        self.net = net
        self.tokenizer = tokenizer
        self.device = device or "cpu"
        # set by the trainer when the lower blocks are frozen: (start, pairs -> cached states);
        # predictions from those states are exactly those of the full forward pass
        self._from_hidden: Any = None  # (start layer, cached-hidden function) while training
        inp = self.metadata.setdefault("input", {})
        inp.setdefault("use_context", True)
        inp.setdefault("max_length", 256)
        inp.setdefault("text_prefix", "")
        inp.setdefault("context_prefix", "")
        inp.setdefault("pair_order", "text_context")

    # -- inputs
    @property
    def input_config(self) -> dict[str, Any]:
        return self.metadata["input"]

    def encode(self, clauses, padding: bool | str = "longest", return_tensors: str | None = "pt") -> dict:
        """Tokenize clauses exactly as in training: ``(prefix+text, prefix+context)``, context truncated first."""
        return encode_pairs(self.tokenizer, as_pairs(clauses, context_fields(self.input_config)), self.input_config,
                            padding=padding, return_tensors=return_tensors)

    # -- predicting
    def predict_proba(self, clauses, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        clauses = list(clauses)
        return self.blend(self.net_proba(clauses, batch_size, progress), clauses)

    def net_proba(self, clauses, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """The network's own probabilities (without the TF-IDF companion)."""
        torch = _torch()
        pairs = as_pairs(clauses, context_fields(self.input_config))
        n = len(pairs)
        if n == 0:
            return np.zeros((0, len(self.label_ids)), dtype=np.float32)
        bs = int(batch_size or self.metadata.get("config", {}).get("predict", {}).get("batch_size", 32))
        order = sorted(range(n), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        out = np.zeros((n, len(self.label_ids)), dtype=np.float32)
        self.net.eval()
        self.net.to(self.device)
        batches = [order[i:i + bs] for i in range(0, n, bs)]
        it = batches
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(batches, desc="predicting", unit="batch")
        with torch.inference_mode():
            if self._from_hidden is not None:
                start, fn = self._from_hidden
                for idx in it:
                    hs = fn([pairs[i] for i in idx])
                    t = max(h.shape[0] for h, _ in hs)
                    x = torch.zeros(len(hs), t, hs[0][0].shape[1])
                    mask = torch.zeros(len(hs), t, dtype=torch.long)
                    tmask = torch.zeros(len(hs), t, dtype=torch.long)
                    for r, (h, n_text) in enumerate(hs):
                        x[r, : h.shape[0]] = h
                        mask[r, : h.shape[0]] = 1
                        tmask[r, :n_text] = 1
                    logits = self.net.forward_from_hidden(x.to(self.device), mask.to(self.device), start,
                                                          text_mask=tmask.to(self.device))["logits"]
                    out[idx] = torch.sigmoid(logits.float()).cpu().numpy()
                return check_finite(out, self)
            for idx in it:
                enc = encode_pairs(self.tokenizer, [pairs[i] for i in idx], self.input_config)
                enc = {k: v.to(self.device) for k, v in enc.items()}
                logits = self.net(**enc)["logits"].float()
                out[idx] = torch.sigmoid(logits).cpu().numpy()
        return check_finite(out, self)

    # -- saving / loading
    def _write_weights(self, tmp: Path) -> None:
        from safetensors.torch import save_file

        # clone: safetensors refuses tensors that share storage (tied embeddings)
        state = {k: v.detach().to("cpu").contiguous().clone() for k, v in self.net.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "policytag": str(FORMAT_VERSION)})
        self.net.encoder.config.save_pretrained(tmp)
        self.tokenizer.save_pretrained(tmp)
        if self.companion is not None and self.companion_weight > 0:
            self.companion.save_pretrained(tmp / COMPANION_DIR)  # its own policytag.json and checksums

    def full_metadata(self) -> dict[str, Any]:
        meta = super().full_metadata()
        meta["head"] = {"pooling": self.net.pooling, "num_labels": len(self.label_ids),
                        "dropout": float(self.net.dropout.p), "sep_token_id": self.net.sep_token_id}
        return meta

    @classmethod
    def _load(cls, model_dir: Path, meta: dict[str, Any], device: str | None = None) -> "TransformerClassifier":
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoTokenizer

        label_ids = meta["label_ids"]
        head = meta.get("head", {})
        try:
            config = AutoConfig.from_pretrained(model_dir)
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
        except (OSError, ValueError) as e:
            raise ModelNotFoundError(f"{model_dir}: cannot read config/tokenizer ({e}); retrain the model") from None
        encoder = encoder_from_config(config)
        net = build_net(encoder, len(label_ids), pooling=head.get("pooling", "mean"),
                        dropout=head.get("dropout", 0.1),
                        sep_token_id=head.get("sep_token_id", tokenizer.sep_token_id))
        weights = model_dir / WEIGHTS_FILE
        if not weights.exists():
            raise ModelNotFoundError(f"{model_dir}: {WEIGHTS_FILE} is missing; retrain the model")
        try:
            state = load_file(str(weights))
        except Exception as e:  # noqa: BLE001 - truncated or damaged (SafetensorError, OSError, ...)
            from policytag.errors import ModelIntegrityError

            raise ModelIntegrityError(f"{model_dir}: {WEIGHTS_FILE} cannot be read ({type(e).__name__}): the file is "
                                      "damaged; re-train or restore it") from None
        try:
            missing, unexpected = net.load_state_dict(state, strict=False)
        except RuntimeError as e:  # a tensor of the wrong shape
            raise ModelNotFoundError(f"{model_dir}: weights do not match the model ({str(e).splitlines()[0][:200]})"
                                     "; re-train the model") from None
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ModelNotFoundError(
                f"{model_dir}: weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
        net.eval()
        return cls(net, tokenizer, label_ids, thresholds_from_meta(meta, label_ids), meta,
                   device=device or "cpu")


def encoder_from_config(config):
    """A bare encoder (no pooler: the head pools itself) for ``config``."""
    from transformers import AutoModel

    try:
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str]], input_cfg: dict[str, Any],
                 padding: bool | str = "longest", return_tensors: str | None = "pt") -> dict:
    """Tokenize ``(text, context)`` pairs: text first, context second and truncated first.

    When a clause alone is longer than ``max_length`` it is truncated too (the context is
    dropped entirely for that clause) rather than failing.
    """
    max_length = int(input_cfg.get("max_length", 256))
    tp = input_cfg.get("text_prefix") or ""
    cp = input_cfg.get("context_prefix") or ""
    texts = [tp + t for t, _ in pairs]
    use_ctx = bool(input_cfg.get("use_context", True))
    kw = dict(max_length=max_length, padding=padding, return_tensors=return_tensors)
    if not use_ctx or not any(c for _, c in pairs):
        return dict(tokenizer(texts, truncation=True, **kw))
    contexts = [(cp + c) if c else cp or " " for _, c in pairs]
    # clauses that leave room for at least a few context tokens get the pair encoding;
    # a clause without context is encoded alone, whatever else is in the batch (so its
    # tokens, hence its probabilities, never depend on the batch it falls in)
    lens = tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
    room = [max_length - len(ids) - 3 >= 4 and bool(c) for ids, (_, c) in zip(lens, pairs)]
    if all(room):
        return dict(tokenizer(texts, contexts, truncation="only_second", **kw))
    # mixed batch: encode without padding, then pad together
    feats = []
    for t, c, ok in zip(texts, contexts, room):
        if ok:
            feats.append(tokenizer(t, c, truncation="only_second", max_length=max_length))
        else:
            feats.append(tokenizer(t, truncation=True, max_length=max_length))
    feats = [{k: v for k, v in f.items()} for f in feats]
    return dict(tokenizer.pad(feats, padding=padding, return_tensors=return_tensors))
