"""The fast runtime by default (modeling/fast_runtime.py): written at training, chosen on a CPU,
PyTorch with a notice when missing, --runtime torch kept, the same loader everywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from policytag.cli.main import app
from policytag.modeling import fast_runtime
from policytag.modeling.onnx_runtime import OnnxClassifier
from policytag.serving import tagging

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clauses():
    from policytag.text.ingestion import load_document
    from policytag.text.segmentation import segment

    out = []
    for p in sorted(FIXTURES.glob("*.txt")):
        out.extend(segment(load_document(p)))
    return out


@pytest.fixture
def no_runtime(tiny_model_dir, tmp_path):
    d = tmp_path / "no_onnx"
    shutil.copytree(tiny_model_dir, d, ignore=shutil.ignore_patterns("onnx"))
    return d


@pytest.fixture(autouse=True)
def _fresh_notices():
    fast_runtime._NOTICED.clear()


def test_training_writes_the_fast_runtime_with_its_agreement(tiny_model_dir):
    od = tiny_model_dir / "onnx"
    assert (od / "model.onnx").exists() and (od / "model.int8.onnx").exists()
    info = json.loads((od / "onnx.json").read_text(encoding="utf-8"))
    meta = json.loads((tiny_model_dir / "policytag.json").read_text(encoding="utf-8"))
    assert info["source_model_version"] == meta["version"]
    check = info["check"]
    assert check["n_clauses"] > 0 and check["fp32"]["label_agreement"] >= 0.99
    assert check["int8+recheck"]["label_agreement"] >= 0.99
    assert 0 <= check["int8+recheck"]["rechecked"] <= check["n_clauses"]
    assert info["recheck"]["units"] == "log-odds"
    assert fast_runtime.fast_runtime_status(tiny_model_dir) == (True, "")


def test_baseline_gets_no_fast_runtime(baseline_model_dir):
    assert not (baseline_model_dir / "onnx").exists()
    assert fast_runtime.choose_runtime(baseline_model_dir) == ("torch", "")


def test_auto_uses_the_fast_runtime_on_cpu(tiny_model_dir, clauses, capsys):
    from policytag.modeling.classifier import PolicyClassifier

    model = tagging.load_model(tiny_model_dir)
    assert isinstance(model, OnnxClassifier) and model.variant == "int8" and model.recheck_margin > 0
    assert capsys.readouterr().err == ""
    pt = PolicyClassifier.from_pretrained(tiny_model_dir)
    got = model.decide(model.predict_proba(clauses))
    ref = pt.decide(pt.predict_proba(clauses))
    assert np.mean(np.all(got == ref, axis=1)) >= 0.99
    # on a GPU, PyTorch
    assert fast_runtime.choose_runtime(tiny_model_dir, "auto", "cuda") == ("torch", "")


def test_auto_falls_back_to_torch_with_one_notice(no_runtime, capsys):
    from policytag.modeling.classifier import TransformerClassifier

    model = tagging.load_model(no_runtime)
    assert isinstance(model, TransformerClassifier)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no fast runtime" in err[0] and "policytag export-onnx" in err[0]
    tagging.load_model(no_runtime)
    assert capsys.readouterr().err == ""  # once per process


def test_stale_runtime_falls_back_with_notice(tiny_model_dir, tmp_path, capsys):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    meta = json.loads((d / "policytag.json").read_text(encoding="utf-8"))
    meta["version"] = "a-newer-version"
    (d / "policytag.json").write_text(json.dumps(meta), encoding="utf-8")
    model = tagging.load_model(d)
    assert model.backend == "transformer"
    assert "ONNX export was made from model version" in capsys.readouterr().err


def test_predict_default_matches_runtime_torch(tiny_model_dir, tmp_path):
    src = FIXTURES / "jiangxi-2023-kepu-cuoshi.txt"
    runner = CliRunner()
    a, b = tmp_path / "torch.jsonl", tmp_path / "auto.jsonl"
    res = runner.invoke(app, ["predict", str(src), "-m", str(tiny_model_dir), "-o", str(a), "-q", "--runtime", "torch"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["predict", str(src), "-m", str(tiny_model_dir), "-o", str(b), "-q"])
    assert res.exit_code == 0, res.output
    ra = [json.loads(x) for x in a.read_text(encoding="utf-8").splitlines()]
    rb = [json.loads(x) for x in b.read_text(encoding="utf-8").splitlines()]
    assert [r["clause_id"] for r in ra] == [r["clause_id"] for r in rb] and len(ra) > 10
    same = np.mean([(x["themes"], x["measures"]) == (y["themes"], y["measures"]) for x, y in zip(ra, rb)])
    assert same >= 0.99
    assert rb[0]["model_version"] == ra[0]["model_version"]


def test_fast_tokenizer_gives_the_transformers_ids(tiny_model_dir, clauses):
    from transformers import AutoTokenizer

    from policytag.modeling.classifier import as_pairs, encode_pairs

    hf = AutoTokenizer.from_pretrained(tiny_model_dir)
    fast = fast_runtime.FastTokenizer.from_dir(tiny_model_dir)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    pairs = as_pairs(clauses)
    long = ("加强科普" * 60, "一、总体要求")
    for cfg in ({"use_context": True, "max_length": 128, "text_prefix": "", "context_prefix": ""},
                {"use_context": True, "max_length": 24, "text_prefix": "query: ", "context_prefix": "passage: "},
                {"use_context": False, "max_length": 64}):
        for i in range(0, len(pairs), 16):
            batch = pairs[i:i + 16] + [long, ("没有上下文", "")]
            want = encode_pairs(hf, batch, cfg, return_tensors="np")
            got = fast.encode(batch, cfg, names)
            for k in names:
                np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_fast_path_imports_neither_torch_nor_transformers(tiny_model_dir, tmp_path):
    code = (
        "import sys, json\n"
        "from policytag.serving.tagging import load_model, tag_clauses\n"
        f"m = load_model({str(tiny_model_dir)!r})\n"
        "rows = tag_clauses(m, ['开展科普进校园活动。', '加大科普经费投入。'])\n"
        "print(json.dumps({'backend': m.backend, 'rows': len(rows), "
        "'heavy': [x for x in ('torch', 'transformers') if x in sys.modules]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POLICYTAG_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"backend": "onnx", "rows": 2, "heavy": []}


def test_cli_main_import_is_light():
    code = ("import sys; import policytag.cli.main\n"
            "print([m for m in ('torch', 'transformers', 'gradio', 'matplotlib', 'ray', 'pandas', 'onnxruntime') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_ray_worker_uses_the_same_loader(tiny_model_dir, no_runtime, monkeypatch):
    from policytag.serving import ray_engine

    worker = ray_engine.TaggerWorker(str(tiny_model_dir))  # the driver passes predict.runtime (auto)
    assert worker._error is None and isinstance(worker.model, OnnxClassifier)
    calls = []
    real = tagging.load_model
    monkeypatch.setattr(tagging, "load_model", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    w2 = ray_engine.TaggerWorker(str(no_runtime), runtime="auto")
    assert calls and calls[0][1]["runtime"] == "auto" and w2.model.backend == "transformer"
    w3 = ray_engine.TaggerWorker(str(tiny_model_dir), runtime="torch")
    assert w3.model.backend == "transformer"


def test_review_queue_runs_on_the_fast_runtime(tiny_model_dir, clauses):
    from policytag.training.retrain import review_queue

    model = tagging.load_model(tiny_model_dir)
    rows = review_queue(model, clauses[:40], 5, exclude=None, progress=False)
    assert len(rows) == 5 and rows[0]["margin"] <= rows[-1]["margin"]


def test_promotion_writes_a_missing_fast_runtime(no_runtime, tmp_path):
    from policytag.modeling.registry import ModelRegistry

    reg = ModelRegistry(tmp_path / "models")
    vid = reg.register(no_runtime, copy=True)
    assert not (reg.versions_dir / vid / "onnx").exists()
    reg.promote(vid)
    assert fast_runtime.fast_runtime_status(reg.versions_dir / vid) == (True, "")
