"""The label taxonomy, loaded from ``labels/taxonomy.yaml`` (the only source of label ids)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import yaml

from policytag import paths
from policytag.errors import UnknownLabelError

DIMENSIONS = ("themes", "measures")


@dataclass(frozen=True)
class Label:
    id: str
    dimension: str  # "themes" or "measures"
    zh: str
    en: str
    definition: str
    color: str
    family: str | None = None  # measures only: supply / environment / demand

    @property
    def display(self) -> str:
        """Chinese name with the id, as shown in the UI: ``青少年 (youth)``."""
        return f"{self.zh} ({self.id})"


class Taxonomy:
    def __init__(self, data: dict, source: str = "<dict>"):
        self.source = source
        self.version = str(data["version"])
        self.families = dict(data.get("families", {}))
        self.dimension_names = dict(data.get("dimensions", {}))
        self._labels: dict[str, Label] = {}
        self.themes: list[str] = []
        self.measures: list[str] = []
        for dim in DIMENSIONS:
            for item in data[dim]:
                lab = Label(
                    id=item["id"], dimension=dim, zh=item["zh"], en=item["en"],
                    definition=item.get("definition", ""), color=item.get("color", "#999999"),
                    family=item.get("family"),
                )
                if lab.id in self._labels:
                    raise ValueError(f"{source}: label id {lab.id!r} defined twice")
                self._labels[lab.id] = lab
                getattr(self, dim).append(lab.id)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Taxonomy":
        path = Path(path) if path else paths.TAXONOMY_FILE
        with path.open(encoding="utf-8") as fh:
            return cls(yaml.safe_load(fh), source=str(path))

    @property
    def label_ids(self) -> list[str]:
        """All ids in model-output order: themes first, then measures."""
        return self.themes + self.measures

    def ids(self, dimension: str) -> list[str]:
        if dimension not in DIMENSIONS:
            raise ValueError(f"dimension must be one of {DIMENSIONS}, got {dimension!r}")
        return list(getattr(self, dimension))

    def __getitem__(self, label_id: str) -> Label:
        return self._labels[label_id]

    def __contains__(self, label_id: str) -> bool:
        return label_id in self._labels

    def get(self, label_id: str) -> Label | None:
        return self._labels.get(label_id)

    def family_of(self, measure_id: str) -> str:
        return self._labels[measure_id].family or ""

    def dimension_of(self, label_id: str) -> str | None:
        """``themes`` or ``measures`` for a known id, None otherwise."""
        lab = self._labels.get(label_id)
        return getattr(lab, "dimension", None) if lab is not None else None

    def validate(self, ids: Iterable[str], dimension: str, where: str = "") -> list[str]:
        """Return ids as a list; raise UnknownLabelError naming ``where`` for an unknown id."""
        allowed = set(getattr(self, dimension))
        out = []
        for i in ids:
            if i not in allowed:
                raise UnknownLabelError(i, dimension, where, known=self.ids(dimension),
                                        belongs_to=self.dimension_of(i))
            out.append(i)
        return out


@lru_cache(maxsize=8)
def _cached(path: str) -> Taxonomy:
    return Taxonomy.load(path)


def load_taxonomy(path: str | os.PathLike | None = None) -> Taxonomy:
    """Load (and cache) the taxonomy; the shipped one by default."""
    return _cached(str(Path(path) if path else paths.TAXONOMY_FILE))
