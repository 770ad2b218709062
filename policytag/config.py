"""Configuration: YAML files in ``configs/`` plus ``key=value`` overrides from the command line.

A config file is a nested mapping (sections such as ``model``, ``training``, ``predict``);
``extends: default`` inherits another config. Overrides use dotted keys:
``training.epochs=3`` or ``model.base=hfl/rbt3``; values are parsed as YAML scalars.

Every section has an options dataclass below (:class:`ModelOptions`, :class:`TrainingOptions`,
:class:`ThresholdOptions`, :class:`PredictOptions`, :class:`AppOptions`, ...). The dataclasses
declare names and types only: **the YAML files are the only place defaults live.** Loading
is strict: an unknown key (``training.epoch``), a missing key or a wrong type
(``predict.batch_size=abc``) is a :class:`~policytag.errors.ConfigError` that names the key
and what is allowed, before any work starts.

``load_config`` returns the validated mapping (what model directories record);
``load_options`` returns the typed dataclasses.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Union

import yaml

from policytag import paths
from policytag.errors import ConfigError

# --------------------------------------------------------------------------- schemas
# No defaults here on purpose: every value comes from configs/*.yaml.


@dataclass(frozen=True)
class DataOptions:
    gold: str | None
    exclude_test_docs: bool


@dataclass(frozen=True)
class ModelOptions:
    base: str
    use_context: bool
    context_fields: list[str]
    max_length: int
    text_prefix: str
    context_prefix: str
    pooling: str
    dropout: float
    freeze_embeddings: bool
    train_layers: int | None
    tfidf_weight: float


@dataclass(frozen=True)
class TrainingOptions:
    device: str
    epochs: int
    max_steps: int
    batch_size: int
    group_by_length: bool
    gradient_accumulation_steps: int
    learning_rate: float
    head_learning_rate: float
    weight_decay: float
    warmup_ratio: float
    lr_scheduler: str
    max_grad_norm: float
    pos_weight: str
    pos_weight_max: float
    bf16: Union[str, bool]
    cache_frozen: bool
    threads: int | None
    logging_steps: int
    ddp_timeout: int


@dataclass(frozen=True)
class ThresholdOptions:
    inner_folds: int
    max_inner_folds: int | None
    default: float
    min_positive: int
    prior_strength: float
    gates: bool
    max_false_measure_rate: float | None
    gate_presence: list[str]
    grid: list[float]


@dataclass(frozen=True)
class TrainPredictOptions:
    batch_size: int


@dataclass(frozen=True)
class BaselineOptions:
    ngram_range: list[int]
    max_features: int
    min_df: int
    sublinear_tf: bool
    C: float
    class_weight: str | None
    context_weight: float
    max_iter: int


@dataclass(frozen=True)
class EvaluationOptions:
    cv_folds: int
    compare_baseline: bool


@dataclass(frozen=True)
class TrainConfig:
    """``configs/default.yaml`` and the configs that extend it (``gpu``, ``tiny``)."""

    backend: str
    seed: int
    data: DataOptions
    model: ModelOptions
    training: TrainingOptions
    thresholds: ThresholdOptions
    predict: TrainPredictOptions
    baseline: BaselineOptions
    evaluation: EvaluationOptions


@dataclass(frozen=True)
class PredictOptions:
    batch_size: int
    device: str
    runtime: str
    onnx_variant: str
    onnx_threads: int | None
    onnx_recheck_margin: float
    onnx_batch_size: int | None
    level: str
    summary: bool


@dataclass(frozen=True)
class OnnxOptions:
    write_at_training: bool
    share_weights: bool
    derive_int8: bool
    opset: int
    quantize: bool
    method: str
    smooth_factor: float
    n_calibration: int
    exclude: list[str]
    block_size: int
    per_channel: bool
    reduce_range: bool
    op_types: list[str]
    n_check: int


@dataclass(frozen=True)
class RayOptions:
    address: str | None
    num_workers: int | None
    cpus_per_worker: int
    gpus_per_worker: int
    docs_per_call: int
    chunk_clauses: int
    shared_storage: bool
    format: str
    shard_rows: int
    num_cpus: int | None
    object_store_memory_mb: int
    temp_dir: str | None
    log_to_driver: bool


@dataclass(frozen=True)
class LimitsOptions:
    max_bytes: Union[str, int, None]
    max_unzipped_bytes: Union[str, int, None]
    max_zip_ratio: float


@dataclass(frozen=True)
class PredictConfig:
    """``configs/predict.yaml``: the ``predict`` / ``export-onnx`` commands and the Ray engine."""

    predict: PredictOptions
    onnx: OnnxOptions
    ray: RayOptions
    limits: LimitsOptions


# The app's sections are validated by key name and scalar type only (see APP_SECTIONS):
# the app's own helper owns their meaning.
SCHEMAS: dict[str, type] = {"train": TrainConfig, "predict": PredictConfig}

# --------------------------------------------------------------------------- loading


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value (e.g. training.epochs=3)")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(cfg: dict, overrides: Iterable[str] = ()) -> dict:
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        keys, value = parse_override(item)
        node = cfg
        for k in keys[:-1]:
            if k not in node:
                raise ConfigError(f"--set {item}: unknown section {k!r}; known: {', '.join(sorted(node)) or '(none)'}")
            node = node[k]
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: {k!r} is a value, not a section")
        if keys[-1] not in node:
            where = ".".join(keys[:-1]) or "the top level"
            allowed = ", ".join(sorted(k for k in node if not k.startswith("_")))
            raise ConfigError(f"--set {item}: unknown key {'.'.join(keys)!r}; keys of {where}: {allowed}")
        node[keys[-1]] = value
    return cfg


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e}); fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections, got {type(data).__name__}")
    return data


def _resolve(name: str | os.PathLike, seen: tuple[str, ...] = ()) -> tuple[dict, str]:
    """The merged mapping of a config and the stem of the root of its ``extends`` chain."""
    path = paths.config_file(str(name))
    if str(path) in seen:
        raise ConfigError(f"{path}: 'extends' loops back to itself")
    cfg = _read_yaml(path)
    parent = cfg.pop("extends", None)
    root = path.stem
    if parent:
        base, root = _resolve(parent, seen + (str(path),))
        cfg = _merge(base, cfg)
    return cfg, root


def config_kind(cfg: dict, root: str) -> str:
    if root in ("predict", "app"):
        return root
    if "server" in cfg or "limits" in cfg:
        return "app"
    if "onnx" in cfg and "ray" in cfg:
        return "predict"
    return "train"


def load_config(name: str | os.PathLike = "default", overrides: Iterable[str] = ()) -> dict:
    """Load a config by name (``default``, ``gpu``, ``tiny``, ``predict``, ``app``) or path,
    resolve ``extends``, apply overrides, validate strictly; returns the plain mapping."""
    cfg, root = _resolve(name)
    path = paths.config_file(str(name))
    overrides = list(overrides)
    cfg = apply_overrides(cfg, overrides)
    kind = config_kind(cfg, root)
    validate(cfg, kind, f"{path} with --set {' '.join(overrides)}" if overrides else str(path))
    cfg["_source"] = str(path)
    return cfg


def load_options(name: str | Path = "default", overrides: Iterable[str] = ()) -> Any:
    """The typed options (:class:`TrainConfig`, :class:`PredictConfig`) of a config."""
    cfg = load_config(name, overrides)
    cfg, root = dict(cfg), Path(cfg.pop("_source")).stem
    kind = config_kind(cfg, root)
    if kind not in SCHEMAS:
        raise ConfigError(f"config {name!r} has no options dataclass (kind {kind})")
    return build(SCHEMAS[kind], cfg, "")


# --------------------------------------------------------------------------- validation


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return f"list of {_type_name(inner)}"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, key, source)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{source}: {key} must be {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, (list, tuple)):
            return [_coerce(v, inner, f"{key}[{i}]", source) for i, v in enumerate(value)]
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return build(tp, value, key, source)
    raise ConfigError(f"{source}: {key} must be {_type_name(tp)}, got {value!r}")


def build(cls: type, data: dict, prefix: str, source: str = "config") -> Any:
    """Build the dataclass ``cls`` from ``data``; unknown, missing or mistyped keys are errors."""
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    where = prefix or "the top level"
    unknown = [k for k in data if k not in hints and not str(k).startswith("_")]
    if unknown:
        raise ConfigError(f"{source}: unknown key {'.'.join(filter(None, [prefix, str(unknown[0])]))!r}; "
                          f"keys of {where}: {', '.join(fields)}")
    missing = [k for k in fields if k not in data]
    if missing:
        raise ConfigError(f"{source}: {where} lacks {', '.join(missing)} (add it to the YAML; "
                          "configs/*.yaml hold every default)")
    values = {k: _coerce(data[k], hints[k], ".".join(filter(None, [prefix, k])), source) for k in fields}
    return cls(**values)


# configs/app.yaml: sections and their keys; each value must be a scalar, a list or null.
APP_SECTIONS = ("server", "queue", "limits", "corrections", "review_queue", "retrain", "examples", "ui")


def _validate_app(cfg: dict, source: str) -> None:
    reference, _ = _resolve("app")
    for section, body in cfg.items():
        if str(section).startswith("_"):
            continue
        if section not in reference:
            raise ConfigError(f"{source}: unknown section {section!r}; sections: {', '.join(reference)}")
        ref = reference[section]
        if not isinstance(body, dict) or not isinstance(ref, dict):
            continue
        for key, value in body.items():
            if key not in ref:
                raise ConfigError(f"{source}: unknown key {section}.{key!r}; keys of {section}: {', '.join(ref)}")
            default = ref[key]
            if default is None or value is None:
                continue
            if isinstance(default, bool) != isinstance(value, bool) or (
                    isinstance(default, (int, float)) and not isinstance(value, (int, float))) or (
                    isinstance(default, str) and not isinstance(value, str)) or (
                    isinstance(default, list) and not isinstance(value, list)):
                raise ConfigError(f"{source}: {section}.{key} must be like {default!r} "
                                  f"({type(default).__name__}), got {value!r}")


def validate(cfg: dict, kind: str, source: str = "config") -> None:
    if kind == "app":
        _validate_app(cfg, source)
        return
    build(SCHEMAS[kind], {k: v for k, v in cfg.items() if not str(k).startswith("_")}, "", source)
