"""ONNX export and the ONNX Runtime classifier (modeling/onnx_runtime.py), on the tiny model.

The real default model's agreement and speed are measured by benchmarks/predict_speed.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from policytag.cli.main import app
from policytag.errors import ModelNotFoundError
from policytag.modeling import onnx_runtime as onnx_export
from policytag.modeling.onnx_runtime import OnnxClassifier

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def seed_clauses():
    from policytag.text.ingestion import load_document
    from policytag.text.segmentation import segment

    out = []
    for p in sorted(FIXTURES.glob("*.txt")):
        out.extend(segment(load_document(p)))
    return out


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory):
    """A copy of the tiny model directory with its ONNX export (via the CLI)."""
    d = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(tiny_model_dir, d)
    res = CliRunner().invoke(app, ["export-onnx", str(d)])
    assert res.exit_code == 0, res.output
    return d


def test_export_writes_fp32_int8_and_info(exported):
    od = exported / "onnx"
    assert (od / "model.onnx").stat().st_size > 0 and (od / "model.int8.onnx").stat().st_size > 0
    info = json.loads((od / "onnx.json").read_text(encoding="utf-8"))
    assert {k: info["files"][k] for k in ("fp32", "int8")} == {"fp32": "model.onnx", "int8": "model.int8.onnx"}
    assert info["inputs"][:2] == ["input_ids", "attention_mask"]
    assert info["check"]["n_clauses"] > 0
    assert info["check"]["fp32"]["label_agreement"] >= 0.99
    assert info["check"]["int8+recheck"]["label_agreement"] >= 0.99
    # the fp32 graph reads its weights from model.safetensors: it holds (almost) no weights itself
    weights = (exported / "model.safetensors").stat().st_size
    assert info["shared_weights"]["graphs"]["fp32"]["shared_bytes"] > 0.9 * weights
    assert (od / "model.onnx").stat().st_size < 0.2 * weights
    assert info["quantization"]["method"] == "smooth-dynamic"


def test_self_contained_export_still_loads(tiny_model_dir, tmp_path, seed_clauses):
    """Exports of the earlier format (weights inside the .onnx files) load and agree."""
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    onnx_export.export_onnx(d, settings={"share_weights": False, "method": "dynamic"}, check=False)
    assert json.loads((d / "onnx" / "onnx.json").read_text(encoding="utf-8"))["shared_weights"] is None
    a = OnnxClassifier.from_pretrained(d, variant="fp32").predict_proba(seed_clauses[:20])
    b = OnnxClassifier.from_pretrained(tiny_model_dir, variant="fp32").predict_proba(seed_clauses[:20])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_changed_weights_file_is_refused(exported, tmp_path):
    """The graphs point at offsets in model.safetensors: a rewritten file invalidates them."""
    d = tmp_path / "m"
    shutil.copytree(exported, d)
    (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes() + b" ")
    with pytest.raises(ModelNotFoundError, match="changed after the ONNX export|does not match its recorded checksum"):
        OnnxClassifier.from_pretrained(d)


def test_onnx_classifier_has_the_pytorch_api(exported, seed_clauses):
    from policytag.modeling.classifier import PolicyClassifier

    pt = PolicyClassifier.from_pretrained(exported)
    ox = OnnxClassifier.from_pretrained(exported, variant="fp32")
    assert ox.label_ids == pt.label_ids and ox.version == pt.version
    np.testing.assert_allclose(ox.thresholds, pt.thresholds)
    p = ox.predict_proba(seed_clauses[:5])
    assert p.shape == (5, len(pt.label_ids)) and p.dtype == np.float32
    preds = ox.predict(["开展老年人智能手机运用培训。", {"text": "建设科技馆", "context": "一、设施"}])
    assert len(preds) == 2 and set(preds[0].scores) == set(pt.label_ids)
    assert ox.predict_proba([]).shape == (0, len(pt.label_ids))


def test_onnx_labels_agree_with_pytorch(exported, seed_clauses):
    """The same labels as PyTorch on >= 99% of the seed clauses: fp32 (all, up to float noise)
    and int8 (blockwise). The tiny, barely trained model puts many probabilities within a
    hair of a threshold (a fifth of the clauses have one within 0.003), the hardest case
    for int8; the fp32 re-check near thresholds closes the rest. The default model's
    agreement and micro-F1 are measured by benchmarks/predict_speed.py.
    """
    from policytag.modeling.classifier import PolicyClassifier

    pt = PolicyClassifier.from_pretrained(exported)
    ref = pt.predict_proba(seed_clauses, batch_size=16)
    ref_labels = ref >= pt.thresholds
    for variant, margin, min_agree, max_diff in (("fp32", 0.0, 0.99, 1e-4), ("int8", 0.0, 0.97, 0.02),
                                                  ("int8", 0.05, 0.99, 0.02)):
        clf = OnnxClassifier.from_pretrained(exported, variant=variant, recheck_margin=margin)
        got = clf.predict_proba(seed_clauses, batch_size=16)
        agree = np.mean(np.all((got >= pt.thresholds) == ref_labels, axis=1))
        assert agree >= min_agree, (variant, margin, agree)
        assert np.abs(got - ref).max() <= max_diff, variant
        if margin:
            assert 0 < clf.last_rechecked < len(seed_clauses)


def test_predict_runtime_onnx_matches_torch_rows(exported, tmp_path):
    src = FIXTURES / "jiangxi-2023-kepu-cuoshi.txt"
    runner = CliRunner()
    a, b = tmp_path / "torch.jsonl", tmp_path / "onnx.jsonl"
    assert runner.invoke(app, ["predict", str(src), "-m", str(exported), "-o", str(a), "-q"]).exit_code == 0
    res = runner.invoke(app, ["predict", str(src), "-m", str(exported), "-o", str(b), "-q",
                              "--runtime", "onnx", "--onnx-variant", "fp32"])
    assert res.exit_code == 0, res.output
    ra = [json.loads(x) for x in a.read_text(encoding="utf-8").splitlines()]
    rb = [json.loads(x) for x in b.read_text(encoding="utf-8").splitlines()]
    assert [r["clause_id"] for r in ra] == [r["clause_id"] for r in rb]
    same = np.mean([(x["themes"], x["measures"]) == (y["themes"], y["measures"]) for x, y in zip(ra, rb)])
    assert same >= 0.99
    assert rb[0]["model_version"] == ra[0]["model_version"]
    res = runner.invoke(app, ["predict", str(src), "-m", str(exported), "-o", str(b), "-q", "--runtime", "onnx"])
    assert res.exit_code == 0, res.output  # the int8 default


def test_runtime_onnx_without_export_says_what_to_run(tiny_model_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d, ignore=shutil.ignore_patterns("onnx"))
    with pytest.raises(ModelNotFoundError, match="policytag export-onnx"):
        OnnxClassifier.from_pretrained(d)


def test_stale_export_is_refused(exported, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(exported, d)
    meta = json.loads((d / "policytag.json").read_text(encoding="utf-8"))
    meta["version"] = "a-newer-version"
    (d / "policytag.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelNotFoundError, match="export-onnx"):
        OnnxClassifier.from_pretrained(d)


def test_baseline_model_cannot_be_exported(baseline_model_dir):
    with pytest.raises(onnx_export.OnnxExportError, match="baseline"):
        onnx_export.export_onnx(baseline_model_dir)
    with pytest.raises(ModelNotFoundError, match="drop --runtime onnx"):
        OnnxClassifier.from_pretrained(baseline_model_dir)


# --------------------------------------------------------------------------- the re-check rule


def test_recheck_rows_without_blend_or_gates_is_the_log_odds_band():
    probs = np.array([[0.50, 0.10], [0.56, 0.10], [0.62, 0.10], [0.10, 0.31]], dtype=np.float32)
    thr = np.array([0.5, 0.3])
    got = onnx_export.recheck_rows(probs, probs, thr, 0.25)
    # log-odds distances: 0, 0.24, 0.49 (label 0); 0.05 (label 1)
    assert got.tolist() == [True, True, False, True]
    assert got.tolist() == onnx_export.near_threshold(probs, thr, 0.25).tolist()
    assert not onnx_export.recheck_rows(probs, probs, thr, 0.0).any()


def test_recheck_rows_skips_a_dimension_that_stays_gated_shut():
    """decide(): no label of a dimension whose highest probability is below its gate. A label
    near its threshold does not matter when the gate stays shut whatever the noise; a highest
    probability near the gate does."""
    thr = np.array([0.3, 0.3])
    gates = [(slice(0, 2), 0.7)]
    shut = np.array([[0.31, 0.05]])     # label 0 at its threshold, but 0.31 is far below the gate 0.7
    near_gate = np.array([[0.69, 0.05]])
    open_ = np.array([[0.95, 0.31]])    # gate open for sure; label 1 at its threshold
    far = np.array([[0.95, 0.02]])
    rows = np.vstack([shut, near_gate, open_, far])
    assert onnx_export.recheck_rows(rows, rows, thr, 0.25, gates=gates).tolist() == [False, True, True, False]
    assert onnx_export.recheck_rows(rows, rows, thr, 0.25).tolist() == [True, False, True, False]  # no gates


def test_recheck_rows_carries_the_noise_through_the_blend():
    """Blended p = 0.6 net + 0.4 tfidf. A network probability near 0 barely moves when its
    log-odds move by the margin, so a blended probability at the threshold made by the
    TF-IDF part needs no re-check; a network probability near 0.5 moves the most."""
    thr = np.array([0.4])
    net = np.array([[0.001], [0.45]])
    probs = np.array([[0.4006], [0.41]])   # both a hair from the threshold after blending
    got = onnx_export.recheck_rows(probs, net, thr, 0.25, weight=0.4)
    assert got.tolist() == [False, True]


def test_batching_by_token_count_gives_the_same_probabilities(exported, seed_clauses):
    """Batches are cut by token count after tokenizing a chunk: any batch size and chunking
    gives the same fp32 probabilities (padding is masked), in the input order."""
    clf = OnnxClassifier.from_pretrained(exported, variant="fp32", batch_size=0)
    a = clf.predict_proba(seed_clauses[:60], batch_size=1)
    clf.ENCODE_CHUNK = 7
    b = clf.predict_proba(seed_clauses[:60], batch_size=16)
    np.testing.assert_allclose(a, b, atol=1e-5)
    rev = clf.predict_proba(seed_clauses[:60][::-1], batch_size=16)
    np.testing.assert_allclose(rev[::-1], b, atol=1e-5)


def test_onnx_batch_size_comes_from_the_config_and_can_be_given(exported, monkeypatch):
    assert OnnxClassifier.from_pretrained(exported).batch_size == onnx_export.batch_size_default() == 16
    assert OnnxClassifier.from_pretrained(exported, batch_size=4).batch_size == 4
    assert OnnxClassifier.from_pretrained(exported, batch_size=0).batch_size is None  # the caller's
    calls = []
    clf = OnnxClassifier.from_pretrained(exported, batch_size=4, recheck_margin=0.0)
    real = clf.session.run
    monkeypatch.setattr(clf.session, "run", lambda out, feed: calls.append(len(feed["input_ids"])) or real(out, feed),
                        raising=False)
    clf.predict_proba(["开展老年人智能手机运用培训。"] * 10, batch_size=32)
    assert calls == [4, 4, 2]


def test_predict_refuses_a_negative_onnx_batch_size(exported, tmp_path):
    src = FIXTURES / "jiangxi-2023-kepu-cuoshi.txt"
    res = CliRunner().invoke(app, ["predict", str(src), "-m", str(exported), "-o", str(tmp_path / "o.csv"), "-q",
                                   "--set", "predict.onnx_batch_size=-3"])
    assert res.exit_code != 0 and "onnx_batch_size must be at least 1" in (res.output + str(res.exception))
    assert not (tmp_path / "o.csv").exists()


def test_per_token_int8_study_rewrites_the_graph_correctly(exported, seed_clauses, tmp_path):
    """scripts/per_token_int8_study.py (docs/speed.md): the per-token rewrite of the int8 graph
    computes what the int8 graph approximates (its figures rest on this)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "per_token_int8_study", Path(__file__).parents[1] / "scripts" / "per_token_int8_study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    src = exported / "onnx" / "model.int8.onnx"
    dst = tmp_path / "model.int8.pertoken.onnx"
    n = study.per_token_graph(src, dst, exported / "model.safetensors")
    assert n > 0
    clf = OnnxClassifier.from_pretrained(exported, recheck_margin=0.0)
    sess = onnx_export._session(dst, None, exported / "model.safetensors",
                                disabled_optimizers=["MatMulIntegerToFloatFusion"])
    clauses = seed_clauses[:24]
    from policytag.modeling.classifier import as_pairs, context_fields

    pairs = as_pairs(clauses, context_fields(clf.metadata.get("input") or {}))
    fp32 = clf._run(clf.fp32_session(), pairs, 8, False)
    got = clf._run(sess, pairs, 8, False)
    assert got.shape == fp32.shape
    np.testing.assert_allclose(got, fp32, atol=0.05)
