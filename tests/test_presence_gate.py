"""The presence gate (``thresholds.gate_presence``): a TF-IDF "has any measure" classifier,
trained with the labels, averaged with the highest measure probability in the measure gate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import MINI_GOLD


@pytest.fixture(scope="module")
def clauses():
    from policytag.clause import load_clauses

    return load_clauses(MINI_GOLD)


# --------------------------------------------------------------------------- the rule itself


def test_the_gate_score_is_the_mean_of_the_highest_and_the_presence_probability():
    from policytag.modeling.decisions import apply_gates, decide

    probs = np.array([[0.9, 0.6, 0.2], [0.9, 0.6, 0.2], [0.9, 0.3, 0.1]])  # 1 theme, 2 measures
    presence = np.array([[0.9, 0.9], [0.9, 0.1], [0.9, 0.95]])
    th = np.array([0.5, 0.25, 0.5])
    gates = {"measures": 0.5, "presence": ["measures"]}
    got = decide(probs, th, 1, gates, presence)
    # measure gate scores: (0.6 + 0.9) / 2 = 0.75 open; (0.6 + 0.1) / 2 = 0.35 shut; (0.3 + 0.95) / 2 open
    assert got.tolist() == [[1, 1, 0], [1, 0, 0], [1, 1, 0]]
    # without the presence part the highest alone decides: 0.6, 0.6, 0.3
    assert decide(probs, th, 1, {"measures": 0.5}).tolist() == [[1, 1, 0], [1, 1, 0], [1, 0, 0]]
    assert apply_gates(np.ones((3, 3), dtype=int), probs, 1, gates, presence)[:, 0].tolist() == [1, 1, 1]


def test_a_gate_that_reads_presence_refuses_to_decide_without_it():
    from policytag.errors import PolicytagError
    from policytag.modeling.decisions import decide

    with pytest.raises(PolicytagError, match="presence_proba"):
        decide(np.full((2, 3), 0.6), np.full(3, 0.5), 1, {"measures": 0.5, "presence": ["measures"]})


def test_tuning_records_which_gates_read_presence():
    from policytag.training.thresholds import tune_gates

    rng = np.random.default_rng(0)
    n = 200
    has = rng.random(n) < 0.6
    y = np.zeros((n, 3), dtype=int)
    y[has, 1] = 1
    probs = np.column_stack([rng.random(n), np.where(has, 0.7, 0.55) + 0.1 * rng.random(n), 0.1 * rng.random(n)])
    presence = np.column_stack([np.full(n, 0.5), np.where(has, 0.8, 0.2)])
    th = np.array([0.5, 0.5, 0.5])
    with_p = tune_gates(y, probs, th, 1, presence=presence, presence_dims=["measures"])
    without = tune_gates(y, probs, th, 1)
    assert with_p.get("presence") == ["measures"] and "presence" not in without
    assert tune_gates(y, probs, th, 1, presence=None, presence_dims=["measures"]).get("presence") is None


def test_an_unknown_dimension_in_gate_presence_is_a_config_error():
    from policytag.config import load_config
    from policytag.errors import ConfigError
    from policytag.training.trainer import tune_decisions

    cfg = load_config("tiny", ["thresholds.gate_presence=[actions]"])
    with pytest.raises(ConfigError, match="gate_presence"):
        tune_decisions(np.zeros((4, 17)), np.full((4, 17), 0.5), cfg, 6, np.full((4, 2), 0.5))


def test_recheck_rows_follows_a_presence_gate():
    """Gate score (highest + presence) / 2 against 0.5: with presence 0.3 a highest probability
    of 0.69 sits at the gate (re-check); 0.95 is open for sure; 0.45 stays shut."""
    from policytag.modeling import onnx_runtime

    thr = np.array([0.3, 0.3])
    gates = [(slice(0, 2), 0.5)]
    rows = np.array([[0.69, 0.05], [0.95, 0.02], [0.45, 0.05]])
    pres = [np.array([0.3, 0.3, 0.3])]
    assert onnx_runtime.recheck_rows(rows, rows, thr, 0.25, gates=gates, presence=pres).tolist() == [True, False, False]
    # the same rows gated on the highest alone: 0.69 is safely open (far from 0.5), 0.45 near it
    assert onnx_runtime.recheck_rows(rows, rows, thr, 0.25, gates=gates).tolist() == [False, False, True]


# --------------------------------------------------------------------------- the TF-IDF presence model


def test_the_tfidf_model_has_presence_classifiers_that_survive_saving(baseline_model_dir, clauses, tmp_path):
    from policytag.modeling.classifier import PolicyClassifier

    m = PolicyClassifier.from_pretrained(baseline_model_dir)  # scored in numpy from the saved arrays
    p = m.presence_proba(clauses)
    assert p is not None and p.shape == (len(clauses), 2) and ((p >= 0) & (p <= 1)).all()
    has_measure = np.array([bool(c.measures) for c in clauses])
    assert p[has_measure, 1].mean() > p[~has_measure, 1].mean()  # it learned something on its training data
    m._restore_sklearn(m._state)  # the scikit-learn objects rebuilt from the same arrays
    m._scorer, m._memo = None, None
    assert np.allclose(m.presence_proba(clauses), p, atol=1e-6)
    # the last result is reused only for the same inputs
    assert np.allclose(m.presence_proba(clauses[:3]), p[:3], atol=1e-6)
    assert np.allclose(m.predict_proba(clauses[3:6]), PolicyClassifier.from_pretrained(baseline_model_dir)
                       .predict_proba(clauses[3:6]), atol=1e-6)


def test_a_tfidf_model_saved_before_presence_existed_still_loads_and_gates_on_the_highest(baseline_model_dir,
                                                                                           clauses, tmp_path):
    import shutil

    from policytag.modeling.classifier import PolicyClassifier, file_checksums

    old = tmp_path / "old"
    shutil.copytree(baseline_model_dir, old)
    with np.load(old / "baseline.npz") as z:
        state = {k: z[k] for k in z.files}
    k = len(json.loads((old / "policytag.json").read_text(encoding="utf-8"))["label_ids"])
    keep = state["lr_labels"] < k
    for key in ("lr_coef", "lr_intercept", "lr_classes"):
        state[key] = state[key][keep]
    state["lr_labels"] = state["lr_labels"][keep]
    ck = state["const_labels"] < k
    state["const_labels"], state["const_values"] = state["const_labels"][ck], state["const_values"][ck]
    np.savez_compressed(old / "baseline.npz", **state)
    meta = json.loads((old / "policytag.json").read_text(encoding="utf-8"))
    meta["gates"] = {key: v for key, v in (meta.get("gates") or {}).items() if key != "presence"}
    meta.pop("checksums", None)
    meta["checksums"] = file_checksums(old)
    (old / "policytag.json").write_text(json.dumps(meta), encoding="utf-8")
    m = PolicyClassifier.from_pretrained(old)
    assert m.presence_proba(clauses) is None
    assert len(m.predict(clauses)) == len(clauses)


# --------------------------------------------------------------------------- trained models


def test_a_blended_model_records_the_presence_gate_and_predict_applies_it(tiny_model_dir, clauses):
    from policytag.modeling.classifier import PolicyClassifier

    meta = json.loads((tiny_model_dir / "policytag.json").read_text(encoding="utf-8"))
    assert meta["blend"]["tfidf_weight"] > 0
    m = PolicyClassifier.from_pretrained(tiny_model_dir)
    gates = meta.get("gates") or {}
    if gates.get("measures") is not None:
        assert gates.get("presence") == ["measures"]
    probs = m.predict_proba(clauses)
    dec = m.decide(probs, m.presence_proba(clauses))
    got = m.predict(clauses)
    ids = m.label_ids
    assert [p.themes + p.measures for p in got] == [[ids[j] for j in np.flatnonzero(r)] for r in dec]


def test_replay_reads_the_presence_a_cross_validation_saved(mini_gold, tmp_path):
    from policytag.config import load_config
    from policytag.training.crossval import cross_validate, replay_decisions, system_variants
    from policytag.training.reports import write_cv_report

    cfg = load_config("tiny")
    cv = cross_validate(mini_gold, system_variants(cfg, ["baseline"], "on"), 2, progress=False)
    oof = dict(np.load(write_cv_report(cv, tmp_path / "cv")["oof"]))
    assert oof["presence_0"].shape == (len(mini_gold), 2) and "inner_presence_1_0" in oof
    same = replay_decisions(oof, cv["fold_docs"], mini_gold, cfg)
    assert (same["decisions"] == oof["decisions_0"]).all()
    highest = replay_decisions(oof, cv["fold_docs"], mini_gold, load_config("tiny", ["thresholds.gate_presence=[]"]))
    no_presence = {k: v for k, v in oof.items() if "presence" not in k}
    assert (replay_decisions(no_presence, cv["fold_docs"], mini_gold, cfg)["decisions"] == highest["decisions"]).all()


def test_fitting_presence_for_an_old_run_gives_what_the_pipeline_saves(mini_gold, tmp_path):
    """scripts/oof_study.py --fit-presence rebuilds the presence arrays of a run saved before they
    existed; on a new run it must give exactly the arrays cross-validation saved."""
    import sys
    from pathlib import Path

    from policytag.config import load_config
    from policytag.training.crossval import cross_validate, system_variants
    from policytag.training.reports import write_cv_report

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from oof_study import fit_presence

    cfg = load_config("tiny")
    cv = cross_validate(mini_gold, system_variants(cfg, ["baseline"], "on"), 2, progress=False)
    saved = dict(np.load(write_cv_report(cv, tmp_path / "cv")["oof"]))
    old = {k: v for k, v in saved.items() if "presence" not in k}
    fit_presence(old, cv["fold_docs"], mini_gold, cfg, system=0)
    for key in ("presence_0", "inner_presence_1_0", "inner_presence_2_0"):
        assert np.allclose(old[key], saved[key], atol=1e-6), key
    again = {k: v for k, v in saved.items() if "presence" not in k}
    fit_presence(again, cv["fold_docs"], mini_gold, cfg, system=0, probs=True)  # --refit-tfidf with no change
    for key in ("probs_0", "inner_probs_1_0", "inner_probs_2_0", "presence_0"):
        assert np.allclose(again[key], saved[key], atol=1e-6), key


def test_a_wrong_gate_presence_fails_before_any_training(mini_gold, monkeypatch):
    from policytag.config import load_config
    from policytag.errors import ConfigError
    from policytag.training import trainer

    def no_training(*a, **k):
        raise AssertionError("trained before checking the config")

    monkeypatch.setattr(trainer, "fit_classifier", no_training)
    with pytest.raises(ConfigError, match="gate_presence"):
        trainer.fit_with_thresholds(mini_gold, load_config("tiny", ["thresholds.gate_presence=[acts]"]))
