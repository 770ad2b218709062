"""The model registry: versions, promotion, rollback, atomic files (fake model dirs, no training)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from policytag.errors import ModelNotFoundError, PolicytagError
from policytag.modeling.registry import ModelRegistry


def fake_model(dirpath, data_hash="h0", tag="a"):
    dirpath.mkdir(parents=True)
    meta = {"version": "trainer-id", "backend": "baseline", "data_hash": data_hash,
            "metrics": {"train_fit": {"n": 3}}, "thresholds": {"youth": 0.4}, "label_ids": ["youth"]}
    (dirpath / "policytag.json").write_text(json.dumps(meta), encoding="utf-8")
    (dirpath / "weights.bin").write_text(tag)
    return dirpath


@pytest.fixture
def reg(policytag_home):
    return ModelRegistry()


def test_register_moves_complete_dir_and_names_version(reg, tmp_path):
    assert reg.production() is None and reg.versions() == []
    work = reg.new_version_dir()
    src = fake_model(work / "model", data_hash="abc")
    vid = reg.register(src, corrections=3, overrides=1)
    assert re.fullmatch(r"v0001-\d{8}T\d{4}", vid)
    assert not src.exists()  # moved, not copied
    d = reg.path(vid)
    assert (d / "weights.bin").read_text() == "a"
    assert json.loads((d / "policytag.json").read_text())["version"] == vid  # predictions name the version
    v = reg.get(vid)
    assert (v["status"], v["parent"], v["data_hash"], v["corrections"], v["overrides"]) == \
        ("candidate", None, "abc", 3, 1)
    assert v["metrics"] == {"train_fit": {"n": 3}} and v["created_at"]
    # a directory outside the registry is copied, the original is left alone
    outside = fake_model(tmp_path / "elsewhere", tag="b")
    vid2 = reg.register(outside, parent=vid)
    assert outside.exists() and vid2.startswith("v0002-")
    assert reg.get(vid2)["parent"] == vid
    assert reg.production() is None  # registering does not promote


def test_promote_and_rollback_restore_old_version(reg, tmp_path):
    v1 = reg.register(fake_model(tmp_path / "m1", tag="one"), status="production")
    assert reg.production() == reg.path(v1)
    v2 = reg.register(fake_model(tmp_path / "m2", tag="two"), parent=v1)
    reg.promote(v2)
    assert (reg.production() / "weights.bin").read_text() == "two"
    assert {v["version"]: v["status"] for v in reg.versions()} == {v1: "retired", v2: "production"}
    assert reg.rollback() == v1
    assert (reg.production() / "weights.bin").read_text() == "one"
    assert {v["version"]: v["status"] for v in reg.versions()} == {v1: "production", v2: "retired"}
    with pytest.raises(PolicytagError, match="nothing to roll back"):
        reg.rollback()
    # a fresh registry object (another process) sees the same state
    assert ModelRegistry(reg.root).production_version() == v1


def test_rollback_walks_back_through_history(reg, tmp_path):
    vs = [reg.register(fake_model(tmp_path / f"m{i}"), status="production") for i in range(3)]
    assert reg.production_version() == vs[2]
    assert reg.rollback() == vs[1]
    assert reg.rollback() == vs[0]


def test_resolve_prefixes_and_errors(reg, tmp_path):
    v1 = reg.register(fake_model(tmp_path / "m1"))
    assert reg.resolve("v0001") == v1 and reg.resolve("latest") == v1
    with pytest.raises(ModelNotFoundError, match="known versions"):
        reg.resolve("v0099")
    with pytest.raises(ModelNotFoundError, match="no production"):
        reg.resolve("production")
    with pytest.raises(ModelNotFoundError):
        reg.register(tmp_path)  # not a model directory


def test_registry_file_is_written_atomically(reg, tmp_path):
    reg.register(fake_model(tmp_path / "m1"), status="production")
    names = [p.name for p in reg.root.iterdir()]
    assert "registry.json" in names
    assert not [n for n in names if n.endswith(".tmp")]
    data = json.loads((reg.root / "registry.json").read_text())
    assert data["production"] == reg.production_version()


def test_missing_production_dir_is_a_clear_error(reg, tmp_path):
    import shutil

    v1 = reg.register(fake_model(tmp_path / "m1"), status="production")
    shutil.rmtree(reg.path(v1))
    with pytest.raises(ModelNotFoundError, match="promote another version"):
        reg.production()


def test_cleanup_removes_dirs_of_dead_processes(reg):
    stale = reg.tmp_dir / "train-999999999-abc"
    stale.mkdir(parents=True)
    mine = reg.new_version_dir()
    reg.cleanup()
    assert not stale.exists() and mine.exists()


def test_models_commands(reg, tmp_path):
    from policytag.cli.main import app

    v1 = reg.register(fake_model(tmp_path / "m1"), status="production")
    v2 = reg.register(fake_model(tmp_path / "m2"), parent=v1)
    r = CliRunner()
    res = r.invoke(app, ["models", "list"])
    assert res.exit_code == 0 and v1 in res.output and v2 in res.output and "production" in res.output
    res = r.invoke(app, ["models", "promote", "v0002"])
    assert res.exit_code == 0 and reg.production_version() == v2
    res = r.invoke(app, ["models", "show", "production"])
    assert res.exit_code == 0 and json.loads(res.output)["version"] == v2
    res = r.invoke(app, ["models", "rollback"])
    assert res.exit_code == 0 and reg.production_version() == v1
