"""A transformer blended with a TF-IDF model (``model.tfidf_weight``): trained, saved, loaded
(PyTorch and the fast runtime) and predicting ``(1 − w) · transformer + w · TF-IDF``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import MINI_GOLD, _train_session_model


@pytest.fixture(scope="module")
def blended_dir(tmp_path_factory):
    return _train_session_model(tmp_path_factory, "blended", ["backend=transformer", "model.tfidf_weight=0.4"])


@pytest.fixture(scope="module")
def clauses():
    from policytag.clause import load_clauses

    return load_clauses(MINI_GOLD)[:40]


def test_the_directory_holds_both_parts_and_says_so(blended_dir):
    meta = json.loads((blended_dir / "policytag.json").read_text(encoding="utf-8"))
    assert meta["blend"]["tfidf_weight"] == 0.4 and (blended_dir / "tfidf" / "policytag.json").exists()
    assert "TF-IDF" in (blended_dir / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_probabilities_are_the_weighted_average(blended_dir, clauses):
    from policytag.modeling.classifier import PolicyClassifier

    m = PolicyClassifier.from_pretrained(blended_dir)
    assert m.companion is not None and m.companion.backend == "baseline"
    expected = 0.6 * m.net_proba(clauses) + 0.4 * m.companion.predict_proba(clauses)
    assert np.allclose(m.predict_proba(clauses), expected, atol=1e-6)


def test_the_fast_runtime_blends_too(blended_dir, clauses):
    from policytag.modeling.classifier import PolicyClassifier
    from policytag.serving.tagging import load_model

    fast = load_model(blended_dir)  # auto: the fast runtime on CPU
    assert fast.backend == "onnx" and fast.companion is not None
    ref = PolicyClassifier.from_pretrained(blended_dir).predict_proba(clauses)
    assert np.abs(fast.predict_proba(clauses) - ref).max() < 0.05
    info = json.loads((blended_dir / "onnx" / "onnx.json").read_text(encoding="utf-8"))
    assert info["check"]["int8+recheck"]["label_agreement"] >= 0.9


def test_a_missing_tfidf_part_is_an_integrity_error(blended_dir, tmp_path):
    from policytag.errors import ModelIntegrityError
    from policytag.modeling.classifier import PolicyClassifier

    broken = tmp_path / "m"
    shutil.copytree(blended_dir, broken)
    shutil.rmtree(broken / "tfidf")
    with pytest.raises(ModelIntegrityError, match="TF-IDF part"):
        PolicyClassifier.from_pretrained(broken)


def test_the_weight_is_checked():
    from policytag.config import load_config
    from policytag.errors import ConfigError
    from policytag.training.trainer import fit_classifier

    cfg = load_config("tiny", ["backend=transformer", "model.tfidf_weight=1.0"])
    from policytag.clause import load_clauses

    cl = load_clauses(MINI_GOLD)[:30]
    from policytag.data import dataset as D

    with pytest.raises(ConfigError, match="tfidf_weight"):
        fit_classifier(cl, D.label_matrix(cl), cfg)


def test_a_saved_tfidf_model_scores_in_numpy_exactly_as_scikit_learn(baseline_model_dir, clauses, tmp_path):
    from policytag.modeling.baseline import BaselineClassifier

    m = BaselineClassifier.from_pretrained(baseline_model_dir)
    assert m._scorer is not None  # no scikit-learn needed to predict
    fast = m.predict_proba(clauses + ["", "ＡＢＣ  科普\t基地", "第一条"])
    m._restore_sklearn(m._state)
    m._scorer = None
    slow = m.predict_proba(clauses + ["", "ＡＢＣ  科普\t基地", "第一条"])
    assert np.abs(fast - slow).max() <= 1e-9
    again = BaselineClassifier.from_pretrained(BaselineClassifier.from_pretrained(baseline_model_dir)
                                               .save_pretrained(tmp_path / "copy"))
    assert np.abs(again.predict_proba(clauses) - fast[: len(clauses)]).max() <= 1e-9
