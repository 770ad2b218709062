"""Retraining end to end on the mini gold set: the TF-IDF baseline (seconds) for most tests,
the tiny transformer in a background process for the slow ones."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policytag.clause import Clause, load_clauses
from policytag.data.corrections import CorrectionStore
from policytag.errors import PolicytagError
from policytag.modeling.registry import ModelRegistry, file_lock
import policytag.training.retrain as R
from policytag.training.retrain import (
    MAIN_METRIC,
    TRAIN_DATA_FILE,
    RetrainJob,
    build_training_data,
    corrections_since,
    ensure_production_model,
    metric_change,
    retrain,
    review_queue,
)
from policytag.modeling.classifier import PolicyClassifier

MINI = Path(__file__).parent / "fixtures" / "mini_gold.jsonl"
TEST_DOCS = ["sichuan-2023"]
FAST = ["backend=baseline"]  # with configs/tiny.yaml


@pytest.fixture
def gold():
    return load_clauses(MINI)


@pytest.fixture
def env(policytag_home, gold):
    reg, store = ModelRegistry(), CorrectionStore()
    kw = dict(gold=gold, test_docs=TEST_DOCS, registry=reg, store=store, progress=False)
    return reg, store, kw


def _by_text(gold, start):
    return next(c for c in gold if c.text.startswith(start))


# --------------------------------------------------------------------------- data rules (no training)


def test_build_training_data_overrides_adds_and_holds_out(gold):
    train_clause = _by_text(gold, "各级党委和政府要保障对科普工作的投入")   # jiangxi (training doc)
    test_clause = next(c for c in gold if c.doc_id == "sichuan-2023")
    same = Clause(doc_id="app", clause_id="", text=train_clause.text, themes=list(train_clause.themes),
                  measures=list(train_clause.measures))
    corrections = [
        Clause(doc_id="app", clause_id="x", text=train_clause.text + " ", themes=["officials"], measures=["funding"]),
        Clause(doc_id="sichuan-2023", clause_id="y", text=test_clause.text, themes=["youth"], measures=[]),
        Clause(doc_id="new-doc", clause_id="z", text="一条全新的条款。", themes=[], measures=["activities"]),
    ]
    data = build_training_data(gold, corrections, TEST_DOCS)
    n_test_docs = sum(c.doc_id == "sichuan-2023" for c in gold)
    assert (data.overrides, data.changed, data.added, data.held_out, data.corrections) == (2, 2, 1, 1, 3)
    assert len(data.test) == n_test_docs - 1
    assert all(c.doc_id != "sichuan-2023" for c in data.train)
    texts = {c.text: c for c in data.train}
    assert texts[train_clause.text].themes == ["officials"]           # the correction wins over gold
    assert texts[train_clause.text].source == "correction"
    assert texts[test_clause.text].themes == ["youth"]                # trained on, not tested on
    assert texts[test_clause.text].doc_id == "corrections"
    assert "一条全新的条款。" in texts
    assert len(data.train) == len(gold) - n_test_docs + 2
    # a correction equal to the gold labels overrides nothing that changes
    assert build_training_data(gold, [same], TEST_DOCS).changed == 0


# --------------------------------------------------------------------------- retrain (baseline: fast)


def test_retrain_learns_a_correction_and_versions_it(env, gold):
    reg, store, kw = env
    r1 = retrain("tiny", FAST, **kw)
    assert r1.promoted and r1.parent is None and r1.version.startswith("v0001-")
    assert reg.production_version() == r1.version
    assert r1.n_test == sum(c.doc_id == "sichuan-2023" for c in gold) and r1.new_score is not None
    clause = _by_text(gold, "各级党委和政府要保障对科普工作的投入")
    m1 = PolicyClassifier.from_pretrained(r1.path)
    assert "officials" not in m1.predict([clause])[0].themes
    p1 = m1.predict([clause])[0].scores["officials"]

    store.add(clause, ["officials"], ["funding", "regulation"], annotator="ana")
    assert corrections_since(reg, store) == 1
    r2 = retrain("tiny", FAST, force=True, **kw)
    assert (r2.parent, r2.corrections, r2.overrides, r2.changed, r2.added) == (r1.version, 1, 1, 1, 0)
    assert r2.data_hash != r1.data_hash and r2.promoted and r2.reason == "promoted: --force"
    entry = reg.get(r2.version)
    assert entry["data_hash"] == r2.data_hash and entry["corrections"] == 1 and entry["parent"] == r1.version
    assert entry["metrics"][MAIN_METRIC] == r2.new_score
    # the training data of the new version contains the correction
    trained = {c.text: c for c in load_clauses(Path(r2.path) / TRAIN_DATA_FILE)}
    assert trained[clause.text].themes == ["officials"]
    assert trained[clause.text].measures == ["regulation", "funding"]
    # ... and the model learned it: the clause's label flips
    m2 = PolicyClassifier.from_pretrained(r2.path)
    pred = m2.predict([clause])[0]
    assert "officials" in pred.themes and pred.scores["officials"] > p1
    assert m2.version == r2.version  # predictions name the registered version
    assert corrections_since(reg, store) == 0
    ch = metric_change(reg)
    assert ch["version"] == r2.version and ch["old"] == r1.new_score and ch["delta"] == r2.delta

    # rollback restores the old version
    assert reg.rollback() == r1.version
    assert PolicyClassifier.from_pretrained(reg.production()).version == r1.version


def _fake_scores(monkeypatch, new: float, prod: float, prod_dir_name: str):
    def fake(model, clauses):
        is_prod = Path(model.model_dir).name == prod_dir_name
        s = prod if is_prod else new
        return {MAIN_METRIC: s, "theme_micro_f1": s, "measure_micro_f1": s, "n": len(clauses)}

    monkeypatch.setattr(R, "evaluate_model", fake)


def test_worse_version_is_kept_as_candidate_unless_forced(env, monkeypatch):
    reg, store, kw = env
    v1 = retrain("tiny", FAST, **kw).version
    _fake_scores(monkeypatch, new=0.40, prod=0.50, prod_dir_name=v1)
    r = retrain("tiny", FAST, **kw)
    assert not r.promoted and "kept as candidate" in r.reason and r.delta == pytest.approx(-0.10)
    assert reg.production_version() == v1 and reg.get(r.version)["status"] == "candidate"
    r = retrain("tiny", FAST, force=True, **kw)
    assert r.promoted and reg.production_version() == r.version
    # equal is "not worse"
    _fake_scores(monkeypatch, new=0.50, prod=0.50, prod_dir_name=r.version)
    assert retrain("tiny", FAST, **kw).promoted


def test_interrupted_retraining_leaves_production_untouched(env, monkeypatch):
    reg, store, kw = env
    v1 = retrain("tiny", FAST, **kw).version
    before = (reg.root / "registry.json").read_text()
    from policytag.training import trainer

    def crash(clauses, config, output_dir, **k):
        Path(output_dir).mkdir(parents=True)
        (Path(output_dir) / "half-written.bin").write_text("x")
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train", crash)
    with pytest.raises(KeyboardInterrupt):
        retrain("tiny", FAST, **kw)
    assert (reg.root / "registry.json").read_text() == before
    assert reg.production_version() == v1 and len(reg.versions()) == 1
    assert list(reg.tmp_dir.iterdir()) == []
    assert [p.name for p in reg.versions_dir.iterdir()] == [v1]


def test_only_one_retraining_at_a_time(env):
    reg, store, kw = env
    reg.root.mkdir(parents=True, exist_ok=True)
    with file_lock(reg.root / ".retrain.lock"):
        import multiprocessing as mp

        # flock is per open file: take it in this process, try from another one
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        p = ctx.Process(target=_try_retrain, args=(str(reg.root), str(store.path), q))
        p.start()
        p.join(120)
        assert "another retraining is running" in q.get(timeout=5)


def _try_retrain(root, store_path, q):
    try:
        retrain("tiny", FAST, gold=MINI, test_docs=TEST_DOCS, registry=ModelRegistry(root),
                store=CorrectionStore(store_path), progress=False)
        q.put("ran")
    except PolicytagError as e:
        q.put(str(e))


def test_ensure_production_model_trains_once(env, monkeypatch):
    reg, store, kw = env
    kw = {k: v for k, v in kw.items() if k != "progress"}
    p = ensure_production_model("tiny", FAST, progress=False, **kw)
    assert p == reg.production() and (p / "policytag.json").exists()
    monkeypatch.setattr(R, "retrain", lambda *a, **k: pytest.fail("must not retrain"))
    assert ensure_production_model("tiny", FAST, **kw) == p


def test_review_queue_lists_least_certain_first(baseline_model_dir, gold, policytag_home):
    model = PolicyClassifier.from_pretrained(baseline_model_dir)
    rows = review_queue(model, gold, n=5)
    assert len(rows) == 5 and [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    margins = [r["margin"] for r in rows]
    assert margins == sorted(margins)
    # the margin really is the smallest |p - threshold| of the clause
    for r in rows:
        th = dict(zip(model.label_ids, model.thresholds))
        assert r["margin"] == pytest.approx(min(abs(r[f"p_{l}"] - th[l]) for l in model.label_ids), abs=2e-4)
    all_rows = review_queue(model, gold, n=len(gold))
    assert max(r["margin"] for r in rows) <= min(r["margin"] for r in all_rows[5:]) + 1e-9
    # clauses already corrected are left out
    store = CorrectionStore()
    store.add(rows[0]["text"], [], [])
    again = review_queue(model, gold, n=5, exclude=store)
    assert rows[0]["text"] not in [r["text"] for r in again]
    assert review_queue(model, [], n=5) == []


def test_retrain_and_review_queue_commands(policytag_home, tmp_path):
    from policytag.cli.main import app

    r = CliRunner()
    args = ["retrain", "--config", "tiny", "--set", "backend=baseline", "--set", f"data.gold={MINI}"]
    res = r.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "PROMOTED" in res.output and MAIN_METRIC in res.output
    res = r.invoke(app, args + ["--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    assert out["parent"].startswith("v0001-") and out["version"].startswith("v0002-")
    res = r.invoke(app, ["review-queue", str(MINI), "--n", "3", "-o", str(tmp_path / "q.xlsx")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "q.xlsx").exists()
    # the queue file goes straight back in: unchanged rows are recognized from the p_* columns
    res = r.invoke(app, ["corrections", "import", str(tmp_path / "q.xlsx")])
    assert res.exit_code == 0, res.output
    assert "unchanged (same as the prediction, skipped): 3" in res.output


# --------------------------------------------------------------------------- background job


def test_background_job_thread_mode(env):
    reg, store, kw = env
    kw = {k: v for k, v in kw.items() if k not in ("registry", "store", "progress")}
    job = RetrainJob("tiny", FAST, registry=reg, store=store, mode="thread", **kw).start()
    seen = set()
    while job.running:
        seen.add(job.state()["stage"])
        time.sleep(0.01)
    res = job.wait(120)
    st = job.state()
    assert st["status"] == "done", st
    assert st["fraction"] == 1.0 and res.promoted and res.version == reg.production_version()
    assert "data" in seen or "train" in seen


@pytest.mark.slow
def test_background_job_process_tiny_transformer(env, gold):
    """The tiny BERT trained in a background process; the app thread stays free meanwhile."""
    reg, store, kw = env
    store.add(_by_text(gold, "各级党委和政府要保障对科普工作的投入"), ["officials"], ["funding"])
    job = RetrainJob("tiny", ["backend=transformer"], registry=reg, store=store, gold=str(MINI),
                     test_docs=TEST_DOCS).start()
    stages, ticks = [], 0
    while job.running:  # this loop is "the app": it keeps running while the job trains
        s = job.state()
        if not stages or stages[-1] != s["stage"]:
            stages.append(s["stage"])
        ticks += 1
        time.sleep(0.05)
    res = job.wait(600)
    st = job.state()
    assert st["status"] == "done", st
    assert ticks > 5 and "train" in stages and st["stage"] == "register"
    assert Path(st["log"]).exists()
    assert res.promoted and res.corrections == 1 and res.overrides == 1
    meta = json.loads((reg.production() / "policytag.json").read_text())
    assert meta["backend"] == "transformer" and meta["version"] == res.version
    assert meta["metrics"]["test"]["n"] == res.n_test


@pytest.mark.slow
def test_cancelled_background_job_leaves_production_untouched(env):
    reg, store, kw = env
    v1 = retrain("tiny", FAST, **kw).version
    job = RetrainJob("tiny", ["backend=transformer"], registry=reg, store=store, gold=str(MINI),
                     test_docs=TEST_DOCS).start()
    deadline = time.time() + 300
    while job.state()["stage"] != "train" and job.running and time.time() < deadline:
        time.sleep(0.05)
    job.cancel()
    st = job.state()
    assert st["status"] == "cancelled", st
    assert reg.production_version() == v1 and len(reg.versions()) == 1
    assert list(reg.tmp_dir.iterdir()) == []
