"""The model API end to end on the tiny BERT and the baseline (configs/tiny.yaml)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from policytag.clause import Clause
from policytag.errors import InputError, ModelNotFoundError
from policytag.data.taxonomy import load_taxonomy
from policytag.modeling.classifier import CARD_FILE, META_FILE, PolicyClassifier, Prediction


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "baseline_model_dir"])
def test_model_dir_complete(fixture, request):
    d = request.getfixturevalue(fixture)
    meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
    tax = load_taxonomy()
    assert meta["label_ids"] == tax.label_ids
    assert meta["taxonomy_version"] == tax.version
    assert set(meta["thresholds"]) == set(tax.label_ids)
    for key in ("version", "backend", "data_hash", "config", "metrics", "created_at", "base_model", "input"):
        assert meta.get(key), key
    assert len(meta["data_hash"]) == 64
    assert (d / "metrics.json").exists()
    card = (d / CARD_FILE).read_text(encoding="utf-8")
    assert meta["version"] in card and "micro F1" in card
    if meta["backend"] == "transformer":
        for f in ("model.safetensors", "config.json", "tokenizer.json"):
            assert (d / f).exists(), f
    else:
        assert (d / "baseline.npz").exists() and not (d / "baseline.joblib").exists()  # no pickle
    assert not list(d.parent.glob(".*.tmp")), "no temp dirs left behind"


def test_tiny_training_loss_falls(tiny_model_dir):
    meta = json.loads((tiny_model_dir / META_FILE).read_text(encoding="utf-8"))
    curve = meta["training"]["loss_curve"]
    assert len(curve) >= 4
    assert np.mean(curve[-3:]) < 0.8 * np.mean(curve[:3])


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "baseline_model_dir"])
def test_reload_identical_and_thresholds_applied(fixture, request, mini_gold, tmp_path):
    d = request.getfixturevalue(fixture)
    m1 = PolicyClassifier.from_pretrained(d)
    p1 = m1.predict_proba(mini_gold)
    assert p1.shape == (len(mini_gold), len(m1.label_ids))
    assert ((p1 >= 0) & (p1 <= 1)).all()
    copy_dir = m1.save_pretrained(tmp_path / "copy")
    m2 = PolicyClassifier.from_pretrained(copy_dir)
    np.testing.assert_allclose(m2.predict_proba(mini_gold), p1, atol=1e-6)
    assert m2.version == m1.version
    np.testing.assert_array_equal(m2.thresholds, m1.thresholds)
    # thresholds decide: moving one threshold flips exactly that label's decisions
    preds = m1.predict(mini_gold)
    assert all(isinstance(p, Prediction) for p in preds)
    for p, row in zip(preds, p1):
        on = {lab for lab, v, t in zip(m1.label_ids, row, m1.thresholds) if v >= t}
        assert set(p.themes) | set(p.measures) == on
        assert set(p.themes) <= set(load_taxonomy().themes)
    m1.thresholds = np.zeros_like(m1.thresholds)
    assert all(len(p.themes) == 6 and len(p.measures) == 11 for p in m1.predict(mini_gold[:3]))
    m1.thresholds = np.ones_like(m1.thresholds) * 1.01
    assert all(not p.themes and not p.measures for p in m1.predict(mini_gold[:3]))


def test_input_kinds(baseline_model_dir):
    m = PolicyClassifier.from_pretrained(baseline_model_dir)
    c = Clause(doc_id="d", clause_id="d#1", text="将科普经费列入本级财政预算。", context="四、保障")
    a = m.predict_proba([c])
    b = m.predict_proba([{"text": c.text, "context": c.context}])
    np.testing.assert_allclose(a, b)
    assert m.predict_proba(["将科普经费列入本级财政预算。"]).shape == (1, 17)
    assert m.predict_proba([]).shape == (0, 17)
    with pytest.raises(InputError):
        m.predict_proba([{"context": "x"}])


def test_missing_model_dir_is_clear(tmp_path):
    with pytest.raises(ModelNotFoundError, match="policytag train"):
        PolicyClassifier.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="not a policytag model directory"):
        PolicyClassifier.from_pretrained(tmp_path / "empty")


def test_training_is_reproducible(mini_gold):
    from policytag.config import load_config
    from policytag.data.dataset import label_matrix
    from policytag.training.trainer import fit_classifier

    cfg = load_config("tiny", ["thresholds.inner_folds=0", "training.epochs=3"])
    y = label_matrix(mini_gold)
    a = fit_classifier(mini_gold, y, cfg).predict_proba(mini_gold[:8])
    b = fit_classifier(mini_gold, y, cfg).predict_proba(mini_gold[:8])
    np.testing.assert_array_equal(a, b)
