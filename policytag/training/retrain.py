"""Retraining on corrected labels, promotion, the review queue and the background job.

The loop: gold labels (``labels/clauses.jsonl``) + the latest correction of every clause
(:class:`~policytag.corrections.CorrectionStore`) → a new model version trained with the
current config → evaluated on the fixed test documents (``labels/splits.yaml``) and
compared with the production model on exactly the same clauses → promoted only when it is
not worse on the main metric, otherwise kept as a candidate.

Main metric (``MAIN_METRIC``): the mean of the micro-averaged F1 over the theme labels
and the micro-averaged F1 over the measure labels on the test documents.

How the training data is built (:func:`build_training_data`):

- a correction overrides the gold labels of every gold clause with the same normalized
  text (``clause_key``); these are the *overrides*;
- a correction of a clause that is not in the gold data is *added* as a new clause;
- the model is trained on the gold clauses outside the test documents plus all
  corrections; test-document clauses that a user corrected are trained on (the user's
  fix must be learned) and therefore left out of the comparison for both models
  (*held out of the test set*), so the comparison never rewards memorizing a correction.

Safety: the model is trained into a temporary directory of the registry and moved into
``versions/`` only when complete; promotion is one atomic write of ``registry.json``. A
crash or Ctrl-C at any point leaves the production model as it was. Only one retraining
runs at a time per registry (a file lock).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from policytag.data.records import ClauseRow, ReviewItem
from policytag import paths
from policytag.clause import Clause, write_jsonl
from policytag.config import load_config
from policytag.data import dataset
from policytag.data.corrections import CorrectionStore, clause_key
from policytag.data.taxonomy import load_taxonomy
from policytag.errors import InputError, ModelNotFoundError, PolicytagError
from policytag.modeling.classifier import PolicyClassifier
from policytag.modeling.registry import ModelRegistry, file_lock
from policytag.training.evaluation import bootstrap_docs, evaluate
from policytag.training import trainer

MAIN_METRIC = "mean_micro_f1"
MAIN_METRIC_DESCRIPTION = "mean of theme micro-F1 and measure micro-F1 on the test documents"
TRAIN_DATA_FILE = "train_clauses.jsonl"   # written into every registered version: what it learned from
RETRAIN_FILE = "retrain.json"             # the comparison report, next to the model
TOLERANCE = 1e-9                          # "not worse" allows float noise only

ProgressFn = Callable[[str, float, str], None]  # (stage, fraction 0..1, message)

STAGES = {  # stage -> (start, end) fraction of the whole job
    "data": (0.0, 0.05),
    "train": (0.05, 0.80),
    "evaluate": (0.80, 0.95),
    "register": (0.95, 1.0),
}


# --------------------------------------------------------------------------- data

@dataclass
class TrainingData:
    train: list[Clause]
    test: list[Clause]
    overrides: int = 0          # corrections that replaced the gold labels of a gold clause
    overridden_clauses: int = 0  # gold clauses whose labels were replaced (same text may repeat)
    changed: int = 0            # of the overrides, those whose labels actually differ from gold
    added: int = 0              # corrections of clauses that are not in the gold data
    held_out: int = 0           # test-document clauses left out of the comparison (corrected)
    corrections: int = 0        # corrections used (latest per clause)

    def summary(self) -> str:
        return (f"{len(self.train)} training clauses ({self.corrections} corrections: {self.overrides} override "
                f"gold labels [{self.changed} changed], {self.added} added); {len(self.test)} test clauses"
                + (f" ({self.held_out} corrected test clauses held out)" if self.held_out else ""))


def build_training_data(gold: Sequence[Clause], corrections: Sequence[Clause],
                        test_docs: Iterable[str]) -> TrainingData:
    """Merge gold and corrections (see the module docstring for the rules)."""
    test_docs = set(test_docs)
    corr: dict[str, Clause] = {}
    for c in corrections:  # latest() is oldest-first, so a later duplicate wins
        corr[clause_key(c.text)] = c
    train: list[Clause] = []
    test: list[Clause] = []
    matched: set[str] = set()
    changed: set[str] = set()
    overridden = held_out = 0
    for g in gold:
        k = clause_key(g.text)
        corrected = corr.get(k)
        if corrected is not None:
            matched.add(k)
            if (sorted(g.themes or []) != sorted(corrected.themes or [])
                    or sorted(g.measures or []) != sorted(corrected.measures or [])):
                changed.add(k)
        if g.doc_id in test_docs:
            if corrected is not None:
                held_out += 1
            else:
                test.append(g)
            continue
        if corrected is not None:
            overridden += 1
            train.append(replace(g, themes=list(corrected.themes or []), measures=list(corrected.measures or []),
                                 source="correction"))
        else:
            train.append(g)
    in_train = {clause_key(t.text) for t in train}
    added = 0
    for k, c in corr.items():
        if k in in_train:
            continue
        if k not in matched:
            added += 1
        # a correction whose doc is a held-out document must still be trained on: mark its origin
        doc = c.doc_id if c.doc_id and c.doc_id not in test_docs else "corrections"
        train.append(replace(c, doc_id=doc, source="correction"))
    return TrainingData(train=train, test=test, overrides=len(matched), overridden_clauses=overridden,
                        changed=len(changed), added=added, held_out=held_out, corrections=len(corr))


# --------------------------------------------------------------------------- metrics

def evaluate_model(model: Any, clauses: Sequence[Clause]) -> dict[str, Any]:
    """The main metric (and its two parts) plus the full ``training.evaluation.evaluate`` report;
    ``"decisions"`` holds the 0/1 matrix (for the document bootstrap of the promotion gate)."""
    if not clauses:
        return {}
    probs = model.predict_proba(list(clauses))
    report = evaluate(model, list(clauses), probs=probs)
    out: dict[str, Any] = {
        "theme_micro_f1": float(report["themes"]["micro_f1"]),
        "measure_micro_f1": float(report["measures"]["micro_f1"]),
        "theme_macro_f1": float(report["themes"]["macro_f1"]),
        "measure_macro_f1": float(report["measures"]["macro_f1"]),
    }
    out[MAIN_METRIC] = round((out["theme_micro_f1"] + out["measure_micro_f1"]) / 2, 4)
    out["report"] = _jsonable(report)
    out["n"] = len(clauses)
    out["n_docs"] = len({c.doc_id for c in clauses})
    out["decisions"] = model.decide_clauses(probs, clauses)
    return out


def gate(test: Sequence[Clause], new: dict, prod: dict, n_boot: int = 1000) -> dict | None:
    """Uncertainty of new − production on the test documents: the difference of the main
    metric recomputed on documents resampled with replacement (95% interval, share of
    resamples in which the new model is worse)."""
    if "decisions" not in new or "decisions" not in prod:
        return None
    tax = load_taxonomy()
    y = dataset.label_matrix(list(test), tax)
    return bootstrap_docs(list(test), y, prod["decisions"], new["decisions"], tax.label_ids, len(tax.themes),
                          n_boot=n_boot)


def _public(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "decisions"}


def _jsonable(obj: Any) -> Any:
    try:
        return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    except (TypeError, ValueError):
        return str(obj)


# --------------------------------------------------------------------------- retrain

@dataclass
class RetrainResult:
    version: str
    path: str
    promoted: bool
    reason: str
    parent: str | None
    metric: str = MAIN_METRIC
    new_score: float | None = None
    production_score: float | None = None
    delta: float | None = None
    new_metrics: dict = field(default_factory=dict)
    production_metrics: dict = field(default_factory=dict)
    data_hash: str = ""
    n_train: int = 0
    n_test: int = 0
    corrections: int = 0
    overrides: int = 0
    changed: int = 0
    added: int = 0
    held_out: int = 0
    corrections_max_id: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        def f(x):
            return "n/a" if x is None else f"{x:.4f}"

        lines = [
            f"new version {self.version} ({'PROMOTED to production' if self.promoted else 'kept as candidate'})",
            f"  trained on {self.n_train} clauses: {self.corrections} corrections "
            f"({self.overrides} override gold labels, {self.changed} of them changed; {self.added} added)",
            f"  {self.metric} on {self.n_test} test clauses: new {f(self.new_score)} vs production"
            f" {self.parent or '(none)'} {f(self.production_score)}"
            + (f" (change {self.delta:+.4f})" if self.delta is not None else ""),
        ]
        if self.held_out:
            lines.append(f"  {self.held_out} corrected test clause(s) held out of the comparison")
        lines.append(f"  {self.reason}")
        return "\n".join(lines)


def _emit(on_progress: ProgressFn | None, stage: str, within: float, message: str) -> None:
    if on_progress is None:
        return
    a, b = STAGES[stage]
    try:
        on_progress(stage, a + (b - a) * max(0.0, min(1.0, within)), message)
    except Exception:  # a broken progress display must not break training
        pass


def _clauses(value: Any, default: Callable[[], list[Clause]]) -> list[Clause]:
    if value is None:
        return default()
    if isinstance(value, (str, os.PathLike)):
        return dataset.load_gold(value)
    return list(value)


def _train(clauses: list[Clause], cfg: dict, out: Path, progress: bool, on_progress: ProgressFn | None) -> Path:
    kwargs: dict[str, Any] = {"progress": progress}
    if on_progress is not None:  # pass a fine-grained callback if the trainer accepts one
        import inspect

        params = inspect.signature(trainer.train).parameters
        cb = lambda frac, msg="training": _emit(on_progress, "train", float(frac), str(msg))  # noqa: E731
        for name in ("on_progress", "progress_callback", "callback"):
            if name in params:
                kwargs[name] = cb
                break
    return Path(trainer.train(clauses, cfg, out, **kwargs))


def _load_model(path: Path):
    return PolicyClassifier.from_pretrained(path)


def retrain(config: str | os.PathLike = "default", overrides: Sequence[str] = (), force: bool = False,
            progress: bool = True, registry: ModelRegistry | None = None, store: CorrectionStore | None = None,
            *, gold: Sequence[Clause] | str | os.PathLike | None = None, test_docs: Iterable[str] | None = None,
            on_progress: ProgressFn | None = None, promote: bool = True, annotate: str | None = None) -> RetrainResult:
    """Train a new version on gold + corrections, compare it with production, promote if not worse.

    ``gold`` (clauses or a JSONL path; default ``labels/clauses.jsonl``) and ``test_docs``
    (default ``labels/splits.yaml``'s ``test_docs``) exist for tests and experiments.
    ``force=True`` promotes even when the new version is worse; ``promote=False`` never
    promotes (dry comparison). ``on_progress(stage, fraction, message)`` reports progress.
    Raises :class:`PolicytagError` when another retraining holds the registry.
    """
    t0 = time.monotonic()
    registry = registry or ModelRegistry()
    cfg = load_config(config, overrides)
    registry.root.mkdir(parents=True, exist_ok=True)
    with file_lock(registry.root / ".retrain.lock", blocking=False,
                   what=f"another retraining is running on {registry.root}; wait for it to finish"):
        registry.cleanup()
        store = store or CorrectionStore()
        data, watermark, test_docs = _training_data(cfg, store, gold, test_docs, on_progress)
        data_hash = dataset.data_hash(data.train)
        parent, prod_path = _production(registry)

        tmp = registry.new_version_dir()
        try:
            _emit(on_progress, "train", 0.0, f"training on {len(data.train)} clauses")
            model_dir = _train(data.train, cfg, tmp / "model", progress, on_progress)
            write_jsonl(model_dir / TRAIN_DATA_FILE, data.train)
            _emit(on_progress, "train", 1.0, "training finished")

            _emit(on_progress, "evaluate", 0.0, f"evaluating the new model on {len(data.test)} test clauses")
            new_metrics = evaluate_model(_load_model(model_dir), data.test)
            prod_metrics: dict = {}
            if prod_path is not None:
                _emit(on_progress, "evaluate", 0.5, f"evaluating production {parent} on the same clauses")
                prod_metrics = evaluate_model(_load_model(prod_path), data.test)
            _emit(on_progress, "evaluate", 1.0, "evaluation finished")

            new_score = new_metrics.get(MAIN_METRIC)
            prod_score = prod_metrics.get(MAIN_METRIC)
            delta = None if new_score is None or prod_score is None else round(new_score - prod_score, 4)
            unc = gate(data.test, new_metrics, prod_metrics) if delta is not None else None
            decision, reason = _decision(new_score, prod_score, delta, unc, new_metrics.get("n_docs", 0),
                                         promote=promote, has_production=parent is not None, force=force)

            _emit(on_progress, "register", 0.0, "registering the new version")
            report = {
                "metric": MAIN_METRIC, "metric_description": MAIN_METRIC_DESCRIPTION,
                "new": _public(new_metrics), "production": _public(prod_metrics), "production_version": parent,
                "uncertainty": unc,
                "test_docs": sorted(set(test_docs)), "config": str(config), "overrides": list(overrides),
                "data": {k: v for k, v in asdict(data).items() if k not in ("train", "test")},
            }
            _record_test_metrics(model_dir, new_metrics, data, test_docs)
            (model_dir / RETRAIN_FILE).write_text(json.dumps(_jsonable(report), ensure_ascii=False, indent=2),
                                                  encoding="utf-8")
            vid = registry.register(
                model_dir, parent=parent, corrections=data.corrections, data_hash=data_hash,
                metrics={k: v for k, v in _public(new_metrics).items() if k != "report"},
                main_metric=new_score, compared_with={"version": parent, MAIN_METRIC: prod_score} if parent else None,
                delta=delta, overrides=data.overrides, added=data.added, held_out=data.held_out,
                n_train=len(data.train), n_test=len(data.test), corrections_max_id=watermark,
                config=str(config), config_overrides=list(overrides), note=annotate,
            )
            if decision:
                registry.promote(vid)
            _emit(on_progress, "register", 1.0, f"{vid} {'promoted' if decision else 'kept as candidate'}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    return RetrainResult(
        version=vid, path=str(registry.versions_dir / vid), promoted=decision, reason=reason, parent=parent,
        new_score=new_score, production_score=prod_score, delta=delta,
        new_metrics={k: v for k, v in _public(new_metrics).items() if k != "report"},
        production_metrics={k: v for k, v in _public(prod_metrics).items() if k != "report"},
        data_hash=data_hash, n_train=len(data.train), n_test=len(data.test), corrections=data.corrections,
        overrides=data.overrides, changed=data.changed, added=data.added, held_out=data.held_out,
        corrections_max_id=watermark, seconds=round(time.monotonic() - t0, 1),
    )


def _training_data(cfg: dict, store: CorrectionStore, gold: Sequence[Clause] | str | os.PathLike | None,
                   test_docs: Iterable[str] | None,
                   on_progress: ProgressFn | None) -> tuple[TrainingData, int, Iterable[str]]:
    """Gold (``gold``, else the config's ``data.gold``, else the shipped file) merged with the
    store's corrections; returns the data, the store's watermark and the test documents."""
    _emit(on_progress, "data", 0.0, "loading gold labels and corrections")
    if gold is None and (cfg.get("data") or {}).get("gold"):
        gold = cfg["data"]["gold"]  # the config's data.gold (a JSONL path) replaces the shipped gold
    if gold is None and not paths.GOLD_FILE.exists():
        raise InputError(f"no gold labels at {paths.GOLD_FILE}; pass a labeled clause file with "
                         "--set data.gold=FILE.jsonl")
    gold_clauses = _clauses(gold, dataset.load_gold)
    watermark = store.max_id()
    corrections = [c for c in store.latest()]
    if test_docs is None:
        test_docs = dataset.load_splits().get("test_docs", [])
    data = build_training_data(gold_clauses, corrections, test_docs)
    if not data.train:
        raise PolicytagError("nothing to train on: no gold clauses outside the test documents and no corrections")
    _emit(on_progress, "data", 1.0, data.summary())
    return data, watermark, test_docs


def _production(registry: ModelRegistry) -> tuple[str | None, Path | None]:
    """The production version and its directory; ``(None, None)`` when there is none (or it is gone)."""
    parent = registry.production_version()
    prod_path = None
    if parent is not None:
        try:
            prod_path = registry.production()
        except ModelNotFoundError:
            parent = None
    return parent, prod_path


def _decision(new_score: float | None, prod_score: float | None, delta: float | None, unc: dict | None,
              docs: int, *, promote: bool, has_production: bool, force: bool) -> tuple[bool, str]:
    """Promote or keep as candidate, and why."""
    why = "" if unc is None else (
        f" on {docs} test document(s): change {delta:+.4f}, 95% interval over documents "
        f"[{unc['ci95'][0]:+.4f}, {unc['ci95'][1]:+.4f}], worse in {unc['p_below_zero']:.0%} of resamples")
    if not promote:
        return False, "not promoted (comparison only)"
    if not has_production:
        return True, "promoted: there was no production model"
    if force:
        return True, "promoted: --force"
    if new_score is None or prod_score is None:
        return False, ("kept as candidate: no test clauses to compare on "
                       "(promote with `policytag models promote VERSION` or --force)")
    if new_score + TOLERANCE >= prod_score:
        return True, f"promoted: not worse on {MAIN_METRIC} ({new_score:.4f} >= {prod_score:.4f})" + why
    return False, (f"kept as candidate: worse on {MAIN_METRIC} ({new_score:.4f} < "
                   f"{prod_score:.4f}){why}; promote anyway with "
                   "`policytag models promote VERSION`")


def _record_test_metrics(model_dir: Path, metrics: dict, data: TrainingData, test_docs: Iterable[str]) -> None:
    """Put the test-document report into the model's own metadata (shown by its model card)."""
    from policytag.fileio import atomic_write_text

    meta_file = model_dir / "policytag.json"
    if not metrics.get("report") or not meta_file.exists():
        return
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    report = dict(metrics["report"])
    report["note"] = (f"fixed test documents {', '.join(sorted(set(test_docs)))}"
                      + (f", without {data.held_out} clause(s) corrected by users (trained on)" if data.held_out else ""))
    meta.setdefault("metrics", {})["test"] = report
    meta["retrain"] = {"corrections": data.corrections, "overrides": data.overrides, "added": data.added,
                       "held_out": data.held_out}
    atomic_write_text(meta_file, json.dumps(meta, ensure_ascii=False, indent=2))


def ensure_production_model(config: str | os.PathLike = "default", overrides: Sequence[str] = (),
                            registry: ModelRegistry | None = None, *, store: CorrectionStore | None = None,
                            progress: bool = True, gold: Sequence[Clause] | str | os.PathLike | None = None,
                            test_docs: Iterable[str] | None = None) -> Path:
    """The production model directory; when there is none, train a first version and promote it.

    The first version is trained exactly like :func:`retrain` (gold outside the test
    documents + any corrections), so its test figures are comparable with later versions.
    """
    registry = registry or ModelRegistry()
    prod = registry.production()
    if prod is not None:
        return prod
    res = retrain(config, overrides, force=True, progress=progress, registry=registry, store=store,
                  gold=gold, test_docs=test_docs)
    return Path(res.path)


# --------------------------------------------------------------------------- app helpers

def corrections_since(registry: ModelRegistry | None = None, store: CorrectionStore | None = None,
                      version: str | None = None) -> int:
    """Clauses corrected since ``version`` (default: production) was trained; all of them if none."""
    registry = registry or ModelRegistry()
    store = store or CorrectionStore()
    vid = version or registry.production_version()
    if vid is None:
        return store.count(distinct=True)
    entry = registry.get(vid)
    if entry.get("corrections_max_id") is not None:
        return store.count(after_id=int(entry["corrections_max_id"]), distinct=True)
    return store.count(since=entry["created_at"], distinct=True)


def metric_change(registry: ModelRegistry | None = None, version: str | None = None) -> dict:
    """How ``version`` (default: the newest) compares with the production model it was tested against.

    ``{"version", "parent", "metric", "new", "old", "delta", "status"}``; ``old``/``delta`` are
    None for a first version.
    """
    registry = registry or ModelRegistry()
    entry = registry.get(version or "latest")
    comp = entry.get("compared_with") or {}
    new = entry.get("main_metric")
    old = comp.get(MAIN_METRIC)
    return {"version": entry["version"], "parent": entry.get("parent"), "metric": MAIN_METRIC,
            "new": new, "old": old, "delta": entry.get("delta"), "status": entry.get("status")}


# --------------------------------------------------------------------------- review queue

def review_queue(model: Any, clauses: Sequence[Clause | dict | str], n: int = 50, *,
                 exclude: Iterable[str] | CorrectionStore | None = None, batch_size: int | None = None,
                 progress: bool = False) -> list[dict]:
    """The ``n`` clauses whose predictions are least certain, most uncertain first.

    Uncertainty of a clause = the smallest distance ``|p - threshold|`` over all labels
    (``margin``; the label it belongs to is ``nearest_label``). ``exclude``: a correction
    store or clause keys to leave out (already corrected). Each row looks like a ``predict``
    row (doc_id, clause_id, context, text, themes, measures, ``p_<label>``, model_version)
    plus ``rank``, ``margin``, ``nearest_label``, ``nearest_p``, ``threshold``, so a queue
    written to XLSX can be corrected and imported with ``policytag corrections import``.
    """
    from policytag.clause import Clause as _C

    items = []
    for i, c in enumerate(clauses):
        if isinstance(c, _C):
            items.append(c)
        elif isinstance(c, dict):
            items.append(_C.from_dict({"doc_id": "", "clause_id": "", **c}))
        else:
            items.append(_C(doc_id="", clause_id=str(i), text=str(c)))
    if isinstance(exclude, CorrectionStore):
        exclude = set(exclude.latest_by_key())
    skip = set(exclude or ())
    if skip:
        items = [c for c in items if clause_key(c.text) not in skip]
    if not items or n <= 0:
        return []
    probs = np.asarray(model.predict_proba(items, batch_size=batch_size, progress=progress))
    th = np.asarray(model.thresholds, dtype=float)
    dist = np.abs(probs - th[None, :])
    nearest = dist.argmin(axis=1)
    margin = dist[np.arange(len(items)), nearest]
    order = np.argsort(margin, kind="stable")[: int(n)]
    label_ids = list(model.label_ids)
    tax = load_taxonomy()
    themes_set = set(tax.themes)
    version = str(getattr(model, "version", "") or "")
    return [review_item(rank, items[i], probs[i], label_ids, th, int(nearest[i]), themes_set, version).to_dict()
            for rank, i in enumerate(order, 1)]


def review_item(rank: int, clause: Clause, probs: np.ndarray, label_ids: Sequence[str], thresholds: np.ndarray,
                nearest: int, themes: set[str], version: str) -> ReviewItem:
    """One queue entry as the typed record the app reads (:class:`policytag.data.records.ReviewItem`)."""
    on = [lab for lab, p, t in zip(label_ids, probs, thresholds) if p >= t]
    row = ClauseRow(doc_id=clause.doc_id, clause_id=clause.clause_id, text=clause.text, context=clause.context,
                    provision_id=clause.provision_id, span=list(clause.span) if clause.span else None,
                    agencies=list(clause.agencies), themes=[x for x in on if x in themes],
                    measures=[x for x in on if x not in themes],
                    scores={lab: round(float(p), 4) for lab, p in zip(label_ids, probs)}, model_version=version)
    return ReviewItem(rank=rank, margin=round(float(abs(probs[nearest] - thresholds[nearest])), 4),
                      nearest_label=label_ids[nearest], nearest_p=round(float(probs[nearest]), 4),
                      threshold=round(float(thresholds[nearest]), 4), row=row)


# --------------------------------------------------------------------------- background job

def _child_main(kwargs: dict, queue: Any) -> None:
    """Entry point of the retraining process: runs :func:`retrain`, reports through ``queue``."""
    def on_term(signum, frame):  # terminate() → KeyboardInterrupt → temp dir removed, production untouched
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        os.nice(int(kwargs.pop("nice", 10)))  # tagging in the app keeps priority over training
    except (AttributeError, OSError):
        pass
    log = kwargs.pop("log", None)
    if log:  # the trainer's console output goes to a log file, not into the app's terminal
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    registry = ModelRegistry(kwargs.pop("registry_root"))
    store = CorrectionStore(kwargs.pop("store_path"))
    try:
        res = retrain(registry=registry, store=store, progress=False,
                      on_progress=lambda s, f, m: queue.put(("progress", s, f, m)), **kwargs)
        queue.put(("done", res.to_dict()))
    except KeyboardInterrupt:
        queue.put(("cancelled", "retraining was cancelled; production is unchanged"))
    except PolicytagError as e:
        queue.put(("failed", str(e)))
    except BaseException as e:  # noqa: BLE001 - report anything to the app
        queue.put(("failed", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"))


class RetrainJob:
    """Retraining in the background, with progress the app can poll; never blocks tagging.

    ``mode="process"`` (default) runs :func:`retrain` in a separate process at lower CPU
    priority, so the app's tagging keeps running and the job can be cancelled; ``"thread"``
    runs it in a thread of the calling process (simpler, for tests and notebooks)::

        job = RetrainJob(config="default").start()
        job.state()      # {"status": "running", "stage": "train", "fraction": 0.4, "message": ...}
        job.wait()       # -> RetrainResult | None
        job.cancel()     # production stays as it was
    """

    def __init__(self, config: str = "default", overrides: Sequence[str] = (), force: bool = False, *,
                 registry: ModelRegistry | None = None, store: CorrectionStore | None = None,
                 mode: str = "process", nice: int = 10, **retrain_kwargs: Any):
        if mode not in ("process", "thread"):
            raise PolicytagError(f"mode must be 'process' or 'thread', got {mode!r}")
        self.registry = registry or ModelRegistry()
        self.store = store or CorrectionStore()
        self.mode = mode
        self.kwargs = {"config": str(config), "overrides": list(overrides), "force": force, **retrain_kwargs}
        self.nice = nice
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"status": "idle", "stage": None, "fraction": 0.0, "message": "",
                                       "started_at": None, "finished_at": None, "result": None, "error": None,
                                       "log": None}
        self._done = threading.Event()
        self._proc: Any = None  # the multiprocessing child while one runs
        self._thread: threading.Thread | None = None

    # ---- state
    def state(self) -> dict:
        with self._lock:
            return dict(self._state)

    @property
    def running(self) -> bool:
        return self.state()["status"] == "running"

    def result(self) -> RetrainResult | None:
        r = self.state()["result"]
        return RetrainResult(**r) if r else None

    def _update(self, **kw: Any) -> None:
        with self._lock:
            self._state.update(kw)

    def _on_progress(self, stage: str, fraction: float, message: str) -> None:
        self._update(stage=stage, fraction=round(float(fraction), 3), message=message)

    def _finish(self, status: str, result: dict | None = None, error: str | None = None) -> None:
        msg = {"done": "finished", "failed": error or "failed", "cancelled": error or "cancelled"}[status]
        if status == "done" and result:
            msg = RetrainResult(**result).summary()
        self._update(status=status, result=result, error=error if status != "done" else None, message=msg,
                     fraction=1.0 if status == "done" else self.state()["fraction"],
                     finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self._done.set()

    # ---- control
    def start(self) -> "RetrainJob":
        if self.running:
            raise PolicytagError("this retraining job is already running")
        self._done.clear()
        self._update(status="running", stage="data", fraction=0.0, message="starting", result=None, error=None,
                     started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), finished_at=None)
        if self.mode == "thread":
            self._thread = threading.Thread(target=self._run_thread, name="policytag-retrain", daemon=True)
        else:
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            self.registry.root.mkdir(parents=True, exist_ok=True)
            log = str(self.registry.root / "retrain.log")
            self._update(log=log)
            kwargs = dict(self.kwargs, registry_root=str(self.registry.root), store_path=str(self.store.path),
                          nice=self.nice, log=log)
            self._proc = ctx.Process(target=_child_main, args=(kwargs, queue), name="policytag-retrain", daemon=True)
            self._proc.start()
            self._thread = threading.Thread(target=self._pump, args=(queue,), name="policytag-retrain-pump", daemon=True)
        self._thread.start()
        return self

    def _run_thread(self) -> None:
        try:
            res = retrain(registry=self.registry, store=self.store, progress=False, on_progress=self._on_progress,
                          **self.kwargs)
            self._finish("done", res.to_dict())
        except PolicytagError as e:
            self._finish("failed", error=str(e))
        except BaseException as e:  # noqa: BLE001
            self._finish("failed", error=f"{type(e).__name__}: {e}")

    def _pump(self, queue: Any) -> None:
        import queue as _q

        proc = self._proc
        while True:
            try:
                msg = queue.get(timeout=0.5)
            except _q.Empty:
                if proc is not None and not proc.is_alive():
                    try:  # the last message may arrive just after the process ended
                        msg = queue.get(timeout=0.5)
                    except _q.Empty:
                        code = proc.exitcode
                        if self.state()["status"] == "running":
                            self._finish("cancelled" if code and code < 0 else "failed",
                                         error=f"the retraining process ended (exit code {code}); production is unchanged")
                        return
                else:
                    continue
            kind = msg[0]
            if kind == "progress":
                self._on_progress(*msg[1:])
            elif kind == "done":
                self._finish("done", msg[1])
                return
            else:
                self._finish(kind, error=msg[1])
                return

    def wait(self, timeout: float | None = None) -> RetrainResult | None:
        """Block until the job ends (or ``timeout`` seconds); returns the result if it succeeded."""
        self._done.wait(timeout)
        if self._proc is not None and self._done.is_set():
            self._proc.join(5)
        return self.result()

    def cancel(self, timeout: float = 30.0) -> None:
        """Stop the job (process mode); the temporary model is removed, production is untouched."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
        elif self.mode == "thread" and self.running:
            raise PolicytagError("a thread-mode retraining cannot be cancelled; use mode='process'")
        self._done.wait(5)
