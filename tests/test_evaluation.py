"""Metrics, threshold tuning, grouped cross-validation and the evaluate / train commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from policytag.data.taxonomy import load_taxonomy
from policytag.training.evaluation import compute_metrics, summarize_folds
from policytag.training.thresholds import tune_thresholds


def test_compute_metrics_by_hand():
    labels = ["a", "b", "x", "y"]
    yt = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 0, 0]])
    yp = np.array([[1, 0, 1, 1], [0, 0, 0, 1], [1, 0, 0, 0]])
    m = compute_metrics(yt, yp, labels, n_themes=2)
    assert m["per_label"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2, "predicted": 2}
    assert m["per_label"]["b"]["f1"] == 0.0 and m["per_label"]["b"]["support"] == 1
    # themes: tp 2, fp 0, fn 1 -> P 1, R 2/3, F1 0.8; exact: rows 0 and 2
    assert m["themes"]["micro_f1"] == pytest.approx(0.8)
    assert m["themes"]["macro_f1"] == pytest.approx(0.5)
    assert m["themes"]["exact_match"] == pytest.approx(2 / 3, abs=1e-3)
    # measures: x tp1; y tp1 fp1 -> P 2/3 R 1 -> F1 0.8; exact rows 1, 2
    assert m["measures"]["micro_f1"] == pytest.approx(0.8)
    assert m["measures"]["exact_match"] == pytest.approx(2 / 3, abs=1e-3)
    s = summarize_folds([m, m])
    assert s["themes"]["micro_f1"] == {"mean": 0.8, "std": 0.0}


def test_tune_thresholds_finds_separating_value():
    rng = np.random.default_rng(0)
    y = np.zeros((40, 3), dtype=int)
    y[:10, 0] = 1
    y[:3, 1] = 1
    probs = rng.uniform(0, 0.2, size=(40, 3))
    probs[:10, 0] = rng.uniform(0.3, 0.4, size=10)  # positives all in 0.3-0.4: best threshold in (0.2, 0.3]
    probs[:3, 1] = 0.9
    th = tune_thresholds(y, probs, default=0.5, min_positive=2)
    assert 0.2 < th[0] <= 0.3
    assert 0.2 < th[1] <= 0.9
    assert th[2] == 0.5  # no positives: default


def test_cross_validation_baseline_grouped(mini_gold, tmp_path):
    from policytag.config import load_config
    from policytag.training.crossval import cross_validate, system_variants
    from policytag.training.reports import write_cv_report

    cfg = load_config("tiny")
    cv = cross_validate(mini_gold, system_variants(cfg, ["baseline"], "both"), 2, progress=False)
    assert set(cv["systems"]) == {"baseline TF-IDF (context)", "baseline TF-IDF (no context)"}
    docs = cv["fold_docs"]
    assert len(docs) == 2 and not set(docs[0]) & set(docs[1])
    s = cv["systems"]["baseline TF-IDF (context)"]["summary"]
    assert 0 <= s["themes"]["micro_f1"]["mean"] <= 1 and s["themes"]["micro_f1"]["std"] >= 0
    files = write_cv_report(cv, tmp_path / "cv")
    assert all(p.exists() for p in files.values())
    assert "±" in files["markdown"].read_text(encoding="utf-8")
    import json

    import numpy as np

    assert "_oof" not in json.dumps(json.loads(files["json"].read_text(encoding="utf-8")))
    oof = np.load(files["oof"])
    assert list(oof["systems"]) == list(cv["systems"]) and len(oof["clause_ids"]) == len(mini_gold)
    assert oof["probs_0"].shape == (len(mini_gold), 17) and set(np.unique(oof["decisions_1"])) <= {0, 1}
    # the inner out-of-fold probabilities behind each fold's thresholds, rows of that fold's training part
    test_rows = {i for i, c in enumerate(mini_gold) if c.doc_id in set(docs[0])}
    assert len(oof["inner_index_1_0"]) == len(oof["inner_probs_1_0"]) > 0
    assert not set(oof["inner_index_1_0"].tolist()) & test_rows


def test_evaluate_dir_report(tiny_model_dir, baseline_model_dir, tmp_path):
    from policytag.training.evaluation import evaluate_dir

    data = tmp_path / "eval.jsonl"
    from conftest import MINI_GOLD

    data.write_text("\n".join(l for l in MINI_GOLD.read_text(encoding="utf-8").splitlines()
                              if '"jiangxi-2023"' in l) + "\n", encoding="utf-8")
    rep = evaluate_dir(tiny_model_dir, data=data, baseline_dir=baseline_model_dir, out_dir=tmp_path / "rep",
                       progress=False)
    assert len(rep["systems"]) == 2
    for f in ("report.json", "report.md", "f1_by_label.png", "cooccurrence.png"):
        assert (tmp_path / "rep" / f).stat().st_size > 0
    js = json.loads((tmp_path / "rep" / "report.json").read_text(encoding="utf-8"))
    first = next(iter(js["systems"].values()))
    assert set(first["per_label"]) == set(load_taxonomy().label_ids)
    assert {"micro_f1", "macro_f1", "exact_match"} <= set(first["themes"])
    assert any("not a held-out estimate" in n for n in js["notes"])  # mini_gold trained on jiangxi too


def test_train_command_baseline(tmp_path):
    from typer.testing import CliRunner

    from conftest import MINI_GOLD
    from policytag.cli.main import app
    from policytag.modeling.classifier import PolicyClassifier

    r = CliRunner().invoke(app, ["train", "--config", "tiny", "--backend", "baseline", "--data", str(MINI_GOLD),
                                 "-o", str(tmp_path / "m"), "-q", "--set", "thresholds.inner_folds=2"])
    assert r.exit_code == 0, r.output
    m = PolicyClassifier.from_pretrained(tmp_path / "m")
    assert m.backend == "baseline" and m.metadata["config_source"].endswith("tiny.yaml")


def test_unreachable_hub_message(monkeypatch):
    from policytag.errors import ModelNotFoundError
    from policytag.training.trainer import resolve_base

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as e:
        resolve_base("hfl/this-model-does-not-exist-xyz")
    msg = str(e.value)
    assert "hub" in msg and "bundled:multilingual-e5-small" in msg and "local directory" in msg


def test_training_data_holds_out_test_documents():
    from policytag import paths
    from policytag.config import load_config
    from policytag.data import dataset as D
    from policytag.training.trainer import training_clauses

    if not paths.GOLD_FILE.exists():
        pytest.skip("labels/clauses.jsonl not present")
    test_docs = set(D.load_splits()["test_docs"])
    clauses, excluded = training_clauses(load_config("default"))
    assert set(excluded) == test_docs
    assert clauses and not {c.doc_id for c in clauses} & test_docs


def test_replaying_the_decision_rule_reproduces_the_cross_validation(mini_gold, tmp_path):
    import numpy as np

    from policytag.config import load_config
    from policytag.training.crossval import cross_validate, replay_decisions, system_variants
    from policytag.training.reports import write_cv_report

    cfg = load_config("tiny")
    cv = cross_validate(mini_gold, system_variants(cfg, ["baseline"], "on"), 2, progress=False)
    oof = dict(np.load(write_cv_report(cv, tmp_path / "cv")["oof"]))
    same = replay_decisions(oof, cv["fold_docs"], mini_gold, cfg)
    name = next(iter(cv["systems"]))
    assert (same["decisions"] == oof["decisions_0"]).all()
    assert same["pooled"]["measures"]["micro_f1"] == cv["systems"][name]["pooled"]["measures"]["micro_f1"]
    capped = replay_decisions(oof, cv["fold_docs"], mini_gold,
                              load_config("tiny", ["thresholds.max_false_measure_rate=0.0"]))
    assert capped["pooled"]["use"]["no_measures"]["rate"] <= same["pooled"]["use"]["no_measures"]["rate"]


def test_a_saved_cross_validation_reads_back_for_replaying(mini_gold, tmp_path):
    """scripts/oof_study.py, paired_folds.py and stack_study.py read a saved run with read_cv_run."""
    from policytag.config import load_config
    from policytag.training.crossval import cross_validate, system_variants
    from policytag.training.reports import read_cv_run, write_cv_report

    cv = cross_validate(mini_gold, system_variants(load_config("tiny"), ["baseline"], "on"), 2, progress=False)
    write_cv_report(cv, tmp_path / "cv")
    saved, oof, clauses, base = read_cv_run(tmp_path / "cv", gold=mini_gold)
    assert [c.clause_id for c in clauses] == [c.clause_id for c in mini_gold] == list(oof["clause_ids"])
    assert [c.text for c in clauses] == [c.text for c in mini_gold]
    assert saved["fold_docs"] == cv["fold_docs"]
    assert "backend" not in base or base["backend"] == load_config("default")["backend"]
    assert base["thresholds"] == next(iter(cv["systems"].values()))["config"]["thresholds"]


def test_reading_a_directory_that_is_not_a_saved_cross_validation_says_what_to_run(mini_gold, tmp_path):
    from policytag.config import load_config
    from policytag.errors import PolicytagError
    from policytag.training.crossval import cross_validate, system_variants
    from policytag.training.reports import read_cv_run, write_cv_report

    with pytest.raises(PolicytagError, match="train --cv"):
        read_cv_run(tmp_path / "nothing")
    cv = cross_validate(mini_gold, system_variants(load_config("tiny"), ["baseline"], "on"), 2, progress=False)
    write_cv_report(cv, tmp_path / "cv")
    with pytest.raises(PolicytagError, match="labels changed"):
        read_cv_run(tmp_path / "cv", gold=mini_gold[1:])
