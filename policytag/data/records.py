"""Typed records that cross the boundary between the tagging library and its users.

:class:`ClauseRow` is one tagged clause (what ``tag_clauses`` returns as a dict, plus the
state of its review: corrected, accepted, junk). :class:`ReviewItem` is one entry of the
review queue (``policytag.training.retrain.review_queue``). Both convert to and from the
plain dicts of the JSON API and the file exports, so the names of the fields are written
down once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

# review status of a clause in the corrections store (column ``status``; NULL = corrected)
CORRECTED = "corrected"   # labels changed by a person
ACCEPTED = "accepted"     # a person confirmed the model's labels ("the model was right")
JUNK = "junk"             # not a clause (page furniture, a heading): left out of counts and training
STATUSES = (CORRECTED, ACCEPTED, JUNK)

_BASE_KEYS = ("doc_id", "clause_id", "provision_id", "context", "text", "span", "agencies", "themes", "measures")


@dataclass
class ClauseRow:
    """One tagged clause: the model's labels and scores, and what a reviewer made of them."""

    doc_id: str
    clause_id: str
    text: str
    context: str = ""
    provision_id: str = ""
    span: list[int] | None = None
    agencies: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)      # shown labels (corrected ones when reviewed)
    measures: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # label id -> model probability
    model_version: str = ""
    predicted_themes: list[str] | None = None   # the model's labels, kept once a person changed them
    predicted_measures: list[str] | None = None
    status: str = ""          # "" (not reviewed), corrected, accepted, junk
    correction_id: int | None = None
    doc_name: str = ""        # file name or the name given to pasted text

    # ---- conversions
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ClauseRow":
        """A row dict of ``tag_clauses`` / the API (``p_<label>`` score columns) as a record."""
        scores = {k[2:]: float(v) for k, v in d.items() if k.startswith("p_") and v is not None and v != ""}
        if isinstance(d.get("scores"), Mapping):
            scores.update({str(k): float(v) for k, v in d["scores"].items()})
        status = str(d.get("status") or (CORRECTED if d.get("corrected") else ""))
        span = d.get("span")
        return cls(
            doc_id=str(d.get("doc_id") or ""), clause_id=str(d.get("clause_id") or ""), text=str(d.get("text") or ""),
            context=str(d.get("context") or ""), provision_id=str(d.get("provision_id") or ""),
            span=[int(span[0]), int(span[1])] if span else None, agencies=list(d.get("agencies") or []),
            themes=list(d.get("themes") or []), measures=list(d.get("measures") or []), scores=scores,
            model_version=str(d.get("model_version") or ""),
            predicted_themes=_opt_list(d.get("predicted_themes")), predicted_measures=_opt_list(d.get("predicted_measures")),
            status=status, correction_id=d.get("correction_id"), doc_name=str(d.get("doc_name") or ""),
        )

    def to_dict(self, label_ids: Sequence[str] | None = None) -> dict[str, Any]:
        """The API / export row: the ``tag_clauses`` fields, ``p_<label>``, and the review fields when reviewed."""
        d: dict[str, Any] = {k: getattr(self, k) for k in _BASE_KEYS}
        d["span"] = list(self.span) if self.span is not None else None
        for lid in (label_ids if label_ids is not None else self.scores):
            if lid in self.scores:
                d[f"p_{lid}"] = self.scores[lid]
        d["model_version"] = self.model_version
        if self.doc_name:
            d["doc_name"] = self.doc_name
        if self.status:
            d.update(status=self.status, corrected=self.corrected, correction_id=self.correction_id,
                     predicted_themes=self.model_themes, predicted_measures=self.model_measures)
        return d

    # ---- derived
    @property
    def labels(self) -> list[str]:
        return list(self.themes) + list(self.measures)

    @property
    def model_themes(self) -> list[str]:
        return list(self.themes if self.predicted_themes is None else self.predicted_themes)

    @property
    def model_measures(self) -> list[str]:
        return list(self.measures if self.predicted_measures is None else self.predicted_measures)

    @property
    def corrected(self) -> bool:
        """Labels set by a person that differ from the model's (a stale score would mislead)."""
        return self.status == CORRECTED

    @property
    def reviewed(self) -> bool:
        return self.status in STATUSES

    @property
    def junk(self) -> bool:
        return self.status == JUNK

    def confidence(self) -> float | None:
        """How sure the model is of the whole label decision: min over labels of p (on) or 1 - p (off)."""
        if not self.scores:
            return None
        on = set(self.model_themes) | set(self.model_measures)
        return min((p if lid in on else 1.0 - p) for lid, p in self.scores.items())

    def apply_review(self, themes: Sequence[str], measures: Sequence[str], status: str,
                     correction_id: int | None) -> "ClauseRow":
        """A copy showing a stored review decision (the model's labels are kept aside)."""
        new = ClauseRow(**{f.name: getattr(self, f.name) for f in fields(self)})
        new.predicted_themes, new.predicted_measures = self.model_themes, self.model_measures
        new.themes, new.measures = list(themes), list(measures)
        if status == CORRECTED and new.themes == new.predicted_themes and new.measures == new.predicted_measures:
            status = ACCEPTED  # a "correction" to the model's own labels confirms them
        new.status, new.correction_id = status, correction_id
        return new


def _opt_list(v: Any) -> list[str] | None:
    return None if v is None else list(v)


@dataclass
class ReviewItem:
    """One clause of the review queue: the least-certain label and its distance to the threshold."""

    rank: int
    margin: float                 # |p - threshold| of the nearest label (small = uncertain)
    nearest_label: str            # the label whose decision is least certain
    nearest_p: float
    threshold: float
    row: ClauseRow

    def to_dict(self) -> dict[str, Any]:
        """A predict-style row plus rank, margin, nearest_label, nearest_p, threshold."""
        return {"rank": self.rank, "margin": self.margin, "nearest_label": self.nearest_label,
                "nearest_p": self.nearest_p, "threshold": self.threshold, **self.row.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ReviewItem":
        return cls(rank=int(d.get("rank") or 0), margin=float(d.get("margin") or 0.0),
                   nearest_label=str(d.get("nearest_label") or ""), nearest_p=float(d.get("nearest_p") or 0.0),
                   threshold=float(d.get("threshold") or 0.0), row=ClauseRow.from_dict(d))
