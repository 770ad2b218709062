"""A model directory is checked before it is trusted: checksums, no pickle, complete
metadata, finite outputs, one-line errors for damaged files."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from policytag.errors import ModelNotFoundError, PolicytagError

from .conftest import FIXTURES, assert_one_line_error

META = "policytag.json"
TEXTS = ["加强青少年科普教育。", "将科普经费列入本级财政预算。", "建设乡村科普站。"]


def _copy(src: Path, dst: Path, *, drop_checksums: bool = False) -> Path:
    shutil.copytree(src, dst)
    if drop_checksums:
        meta = json.loads((dst / META).read_text(encoding="utf-8"))
        meta.pop("checksums", None)
        (dst / META).write_text(json.dumps(meta), encoding="utf-8")
    return dst


def _edit_meta(d: Path, fn) -> None:
    meta = json.loads((d / META).read_text(encoding="utf-8"))
    fn(meta)
    (d / META).write_text(json.dumps(meta), encoding="utf-8")


def _flip_tensor_bytes(weights: Path, name: str = "head.bias") -> None:
    """Overwrite one tensor's bytes with 0xFF (a NaN for float32), as a damaged disk would."""
    data = bytearray(weights.read_bytes())
    n = struct.unpack("<Q", data[:8])[0]
    a, b = json.loads(data[8:8 + n])[name]["data_offsets"]
    data[8 + n + a:8 + n + b] = b"\xff" * (b - a)
    weights.write_bytes(bytes(data))


def _load(d):
    from policytag.modeling.classifier import PolicyClassifier

    return PolicyClassifier.from_pretrained(d)


def test_save_records_a_sha256_of_every_weight_file(tiny_model_dir, baseline_model_dir):
    import hashlib

    for d, must in ((tiny_model_dir, {"model.safetensors", "config.json", "tokenizer.json"}),
                    (baseline_model_dir, {"baseline.npz"})):
        sums = json.loads((d / META).read_text(encoding="utf-8"))["checksums"]
        assert must <= set(sums)
        for name, digest in sums.items():
            assert hashlib.sha256((d / name).read_bytes()).hexdigest() == digest


def test_flipped_bytes_in_the_weights_are_refused_by_checksum(tiny_model_dir, tmp_path, cli):
    """Was: loaded fine, NaN for every probability, empty labels, exit 0."""
    d = _copy(tiny_model_dir, tmp_path / "m")
    _flip_tensor_bytes(d / "model.safetensors")
    with pytest.raises(ModelNotFoundError, match=r"model\.safetensors does not match its recorded checksum: the file "
                                                 r"is damaged; re-train or restore it"):
        _load(d)
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"clause_id": "a#1", "text": TEXTS[0]}, ensure_ascii=False) + "\n", encoding="utf-8")
    res = cli("predict", src, "--model", d, "-o", tmp_path / "o.csv", "-q")
    assert_one_line_error(res, 2, "model.safetensors does not match its recorded checksum")
    assert not (tmp_path / "o.csv").exists()


def test_nan_outputs_are_refused_even_without_checksums(tiny_model_dir, tmp_path, cli):
    d = _copy(tiny_model_dir, tmp_path / "old", drop_checksums=True)
    _flip_tensor_bytes(d / "model.safetensors")
    model = _load(d)  # an old directory: nothing to check the file against
    with pytest.raises(PolicytagError, match="gives NaN or infinite probabilities for 3 of 3 clauses: its weights are "
                                             "damaged"):
        model.predict_proba(TEXTS)
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"clause_id": "a#1", "text": TEXTS[0]}, ensure_ascii=False) + "\n", encoding="utf-8")
    # the PyTorch runtime reads the damaged weights (the fast runtime's int8 graph holds its own copy)
    res = cli("predict", src, "--model", d, "--runtime", "torch", "-o", tmp_path / "o.jsonl", "-q")
    assert_one_line_error(res, 2, "NaN or infinite probabilities")
    assert not (tmp_path / "o.jsonl").exists()


def test_old_model_dirs_without_checksums_still_load_with_a_notice(tiny_model_dir, baseline_model_dir, tmp_path,
                                                                   capsys):
    for src in (tiny_model_dir, baseline_model_dir):
        d = _copy(src, tmp_path / f"old-{src.parent.name}", drop_checksums=True)
        capsys.readouterr()
        model = _load(d)
        err = capsys.readouterr().err
        assert [line for line in err.splitlines() if line.strip()] == [
            f"notice: {d} has no recorded checksums (saved by an older policytag), so damaged files cannot be "
            "detected; re-train it to record them"]
        np.testing.assert_array_equal(model.predict_proba(TEXTS), _load(src).predict_proba(TEXTS))


@pytest.mark.parametrize("which", ["tiny_model_dir", "baseline_model_dir"])
def test_truncated_weights_are_one_line(which, request, tmp_path, cli):
    src = request.getfixturevalue(which)
    name = "model.safetensors" if which == "tiny_model_dir" else "baseline.npz"
    for drop in (False, True):
        d = _copy(src, tmp_path / f"m{drop}", drop_checksums=drop)
        f = d / name
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
        expected = "does not match its recorded checksum" if not drop else f"{name} cannot be read"
        with pytest.raises(ModelNotFoundError, match=expected):
            _load(d)
        res = cli("review-queue", FIXTURES / "mini_gold.jsonl", "--model", d)
        assert_one_line_error(res, 2, name, expected)


def test_thresholds_and_labels_must_match_the_taxonomy(tiny_model_dir, tmp_path):
    """Was: a policytag.json with 3 of 17 thresholds was accepted (the rest became 0.5)."""
    from policytag.data.taxonomy import load_taxonomy

    ids = load_taxonomy().label_ids
    d = _copy(tiny_model_dir, tmp_path / "th")
    _edit_meta(d, lambda m: m.update(thresholds={k: m["thresholds"][k] for k in ids[:3]}))
    with pytest.raises(ModelNotFoundError, match=rf"thresholds missing for 14 of 17 labels \({ids[3]}, "):
        _load(d)
    d = _copy(tiny_model_dir, tmp_path / "lab")
    _edit_meta(d, lambda m: m.update(label_ids=[i for i in m["label_ids"] if i != "funding"] + ["lottery"]))
    with pytest.raises(ModelNotFoundError, match="labels differ from the taxonomy .*missing funding; not in the taxonomy "
                                                 "lottery"):
        _load(d)
    d = _copy(tiny_model_dir, tmp_path / "nan")
    _edit_meta(d, lambda m: m["thresholds"].update(youth="high"))
    with pytest.raises(ModelNotFoundError, match=r"thresholds must be numbers in \[0, 1\]: youth='high'"):
        _load(d)


def test_baseline_is_stored_without_pickle_and_predicts_identically(mini_gold, tmp_path):
    """Was: baseline.joblib, an unchecked pickle (loading a model directory could run code)."""
    from policytag.data.dataset import label_matrix
    from policytag.modeling.baseline import BaselineClassifier
    from policytag.data.taxonomy import load_taxonomy

    tax = load_taxonomy()
    y = label_matrix(mini_gold, tax)
    clf = BaselineClassifier(tax.label_ids, metadata={"n_themes": len(tax.themes)}).fit(mini_gold, y)
    before = clf.predict_proba(mini_gold)
    d = clf.save_pretrained(tmp_path / "b")
    assert sorted(p.name for p in d.iterdir() if p.name.startswith("baseline")) == ["baseline.npz"]
    with np.load(d / "baseline.npz", allow_pickle=False) as npz:  # plain arrays: no object array in it
        assert all(npz[k].dtype != object for k in npz.files)
    again = _load(d)
    np.testing.assert_array_equal(again.predict_proba(mini_gold), before)  # bit for bit
    assert [p.themes + p.measures for p in again.predict(mini_gold)] == [p.themes + p.measures
                                                                          for p in clf.predict(mini_gold)]


def test_a_legacy_pickle_loads_only_with_a_matching_recorded_checksum(mini_gold, tmp_path):
    import joblib

    from policytag.data.dataset import label_matrix
    from policytag.data.taxonomy import load_taxonomy
    from policytag.modeling.baseline import BaselineClassifier
    from policytag.modeling.classifier import sha256_file

    tax = load_taxonomy()
    clf = BaselineClassifier(tax.label_ids, metadata={"n_themes": len(tax.themes)}).fit(mini_gold, label_matrix(mini_gold, tax))
    d = clf.save_pretrained(tmp_path / "legacy")
    (d / "baseline.npz").unlink()
    joblib.dump({"text_vec": clf.text_vec, "ctx_vec": clf.ctx_vec, "clf": clf.clf, "constant": clf.constant,
                 "params": clf.params}, d / "baseline.joblib")
    _edit_meta(d, lambda m: m.update(checksums={}))
    with pytest.raises(ModelNotFoundError, match="baseline.joblib is a pickle with no recorded checksum"):
        _load(d)
    _edit_meta(d, lambda m: m.update(checksums={"baseline.joblib": "0" * 64}))
    with pytest.raises(ModelNotFoundError, match="baseline.joblib does not match its recorded checksum"):
        _load(d)
    _edit_meta(d, lambda m: m.update(checksums={"baseline.joblib": sha256_file(d / "baseline.joblib")}))
    np.testing.assert_array_equal(_load(d).predict_proba(mini_gold), clf.predict_proba(mini_gold))
