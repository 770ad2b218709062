"""Configuration: YAML files in ``configs/`` plus ``key=value`` overrides from the command line.

A config file is a nested mapping (sections such as ``model``, ``training``, ``predict``).
``extends: default`` inherits another config. Overrides use dotted keys:
``training.epochs=3`` or ``model.base=hfl/rbt3``; values are parsed as YAML scalars.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import yaml

from policytag import paths
from policytag.errors import PolicytagError


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
        raise PolicytagError(f"override {item!r} must look like section.key=value (e.g. training.epochs=3)")
    key, raw = item.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw)


def apply_overrides(cfg: dict, overrides: Iterable[str] = ()) -> dict:
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        keys, value = parse_override(item)
        node = cfg
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise PolicytagError(f"override {item!r}: {k!r} is not a section")
        node[keys[-1]] = value
    return cfg


def load_config(name: str | Path = "default", overrides: Iterable[str] = ()) -> dict:
    """Load a config by name (``default``, ``gpu``, ``tiny``) or path, resolve ``extends``, apply overrides."""
    path = paths.config_file(str(name))
    with open(path, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh) or {}
    parent = cfg.pop("extends", None)
    if parent:
        cfg = _merge(load_config(parent), cfg)
    cfg.setdefault("_source", str(path))
    return apply_overrides(cfg, overrides)
