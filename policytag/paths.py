"""Where shipped data lives and where run-time files go.

Shipped data (taxonomy, gold labels, configs, source documents) is part of the
installed package (``policytag.labels`` / ``policytag.configs``), so the product never
depends on anything outside the package. Run-time files (models, caches, the
corrections store) go under a work directory: ``$POLICYTAG_HOME`` or ``./var``.
"""

from __future__ import annotations

import os
from pathlib import Path

import policytag.configs as _configs
import policytag.labels as _labels

LABELS_DIR = Path(_labels.__file__).resolve().parent
CONFIGS_DIR = Path(_configs.__file__).resolve().parent
TAXONOMY_FILE = LABELS_DIR / "taxonomy.yaml"
GOLD_FILE = LABELS_DIR / "clauses.jsonl"
SPLITS_FILE = LABELS_DIR / "splits.yaml"
GENRES_FILE = LABELS_DIR / "genres.yaml"
SOURCES_DIR = LABELS_DIR / "sources"


def home() -> Path:
    """The work directory for models, caches and the corrections store."""
    return Path(os.environ.get("POLICYTAG_HOME", "var")).resolve()


def models_dir() -> Path:
    return home() / "models"


def cache_dir() -> Path:
    return Path(os.environ.get("POLICYTAG_CACHE", home() / "cache")).resolve()


def corrections_db() -> Path:
    return home() / "corrections.sqlite"


def config_file(name: str) -> Path:
    """Resolve a config name (``default``) or a path (``configs/gpu.yaml``)."""
    p = Path(name)
    if p.suffix in {".yaml", ".yml"} and p.exists():
        return p
    candidate = CONFIGS_DIR / f"{p.stem}.yaml"
    if candidate.exists():
        return candidate
    known = sorted(f.stem for f in CONFIGS_DIR.glob("*.yaml"))
    from policytag.errors import PolicytagError

    raise PolicytagError(f"config {name!r} not found; use a YAML path or one of: {', '.join(known)}")
