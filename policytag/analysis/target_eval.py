"""Precision and recall of :func:`~policytag.analysis.targets.extract_targets` on a hand-checked
fixture (``tests/fixtures/targets_gold.jsonl``; one clause per line with its expected
``targets``, a ``split`` of ``dev`` or ``heldout``).

A predicted target is correct when its quantity and unit equal an expected one (ranges:
both ends) and the indicators overlap (:func:`indicators_overlap`); each expected target
is matched at most once. Deadline accuracy is reported over the correct targets.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from policytag.analysis.targets import Target, doc_year, extract_targets
from policytag.errors import InputError


@dataclass
class TargetEval:
    """Scores on one part of the fixture, with every error for inspection."""

    split: str
    clauses: int
    expected: int
    predicted: int
    correct: int
    deadline_correct: int
    false_positives: list[dict] = field(default_factory=list)   # {id, text, target}
    false_negatives: list[dict] = field(default_factory=list)   # {id, text, expected}

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.expected if self.expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def deadline_accuracy(self) -> float:
        return self.deadline_correct / self.correct if self.correct else 1.0

    def summary(self) -> str:
        return (f"{self.split:8s} clauses={self.clauses:3d} expected={self.expected:3d} predicted={self.predicted:3d} "
                f"correct={self.correct:3d}  precision={self.precision:.3f} recall={self.recall:.3f} "
                f"f1={self.f1:.3f}  deadline_acc={self.deadline_accuracy:.3f}")


def load_fixture(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such fixture file")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{i}: not JSON ({e.msg}); one clause object per line") from e
    return rows


def _lcs(a: str, b: str) -> int:
    best = 0
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0] * (len(b) + 1)
        for j, cb in enumerate(b, 1):
            if ca == cb:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def indicators_overlap(a: str, b: str) -> bool:
    """The longest common substring covers at least 60% of the shorter indicator (min 2 chars);
    an empty indicator never overlaps."""
    a, b = (a or "").strip(), (b or "").strip()
    if not a or not b:
        return False
    need = max(2, math.ceil(0.6 * min(len(a), len(b))))
    return _lcs(a, b) >= need


def _same_quantity(t: Target, g: dict) -> bool:
    def eq(x, y) -> bool:
        if x is None or y is None:
            return x is None and y is None
        return math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9)

    return eq(t.quantity, g["quantity"]) and eq(t.quantity_max, g.get("quantity_max")) \
        and (t.unit or "") == (g.get("unit") or "")


def match(predicted: Sequence[Target], expected: Sequence[dict]) -> list[tuple[int, int]]:
    """(predicted index, expected index) pairs, greedy in text order, each used once."""
    used: set[int] = set()
    pairs = []
    for i, t in enumerate(predicted):
        for j, g in enumerate(expected):
            if j not in used and _same_quantity(t, g) and indicators_overlap(t.indicator, g["indicator"]):
                used.add(j)
                pairs.append((i, j))
                break
    return pairs


def evaluate(rows: Sequence[dict], split: str | None = None) -> TargetEval:
    """Score the extractor on fixture rows (``split``: dev, heldout or None for all)."""
    part = [r for r in rows if split is None or r.get("split") == split]
    res = TargetEval(split=split or "all", clauses=len(part), expected=0, predicted=0, correct=0, deadline_correct=0)
    for r in part:
        clause = {"doc_id": r.get("doc_id", ""), "clause_id": r.get("id", ""), "text": r["text"],
                  "context": r.get("context", "")}
        pred = extract_targets(clause, doc_year=r.get("doc_year") or doc_year(r.get("doc_id", "")))
        gold = r.get("targets") or []
        pairs = match(pred, gold)
        res.expected += len(gold)
        res.predicted += len(pred)
        res.correct += len(pairs)
        res.deadline_correct += sum(1 for i, j in pairs if (pred[i].deadline or None) == (gold[j].get("deadline") or None))
        hit_p = {i for i, _ in pairs}
        hit_g = {j for _, j in pairs}
        res.false_positives += [{"id": r.get("id"), "text": r["text"], "target": pred[i].to_dict()}
                                for i in range(len(pred)) if i not in hit_p]
        res.false_negatives += [{"id": r.get("id"), "text": r["text"], "expected": gold[j]}
                                for j in range(len(gold)) if j not in hit_g]
    return res
