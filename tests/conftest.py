"""Shared pytest fixtures. Append your area's fixtures below (additively)."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
MINI_GOLD = FIXTURES / "mini_gold.jsonl"


@pytest.fixture(autouse=True)
def policytag_home(tmp_path, monkeypatch):
    """Every test gets its own POLICYTAG_HOME (models, cache, corrections store)."""
    home = tmp_path / "policytag_home"
    home.mkdir()
    monkeypatch.setenv("POLICYTAG_HOME", str(home))
    monkeypatch.delenv("POLICYTAG_CACHE", raising=False)
    return home


@pytest.fixture
def mini_gold():
    """~50 hand-labeled clauses from four of the seed documents (LABELING.md rules)."""
    from policytag.clause import load_clauses

    return load_clauses(MINI_GOLD)


def _train_session_model(tmp_path_factory, name: str, overrides: list[str]) -> Path:
    from policytag.clause import load_clauses
    from policytag.config import load_config
    from policytag.training.trainer import train

    root = tmp_path_factory.mktemp(f"{name}_session")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POLICYTAG_HOME", str(root / "home"))
        mp.setenv("POLICYTAG_CACHE", str(tmp_path_factory.getbasetemp() / "shared_cache"))
        cfg = load_config("tiny", overrides)
        return train(load_clauses(MINI_GOLD), cfg, root / "model", progress=False)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A complete transformer model directory: tiny character BERT (configs/tiny.yaml) trained on mini_gold."""
    return _train_session_model(tmp_path_factory, "tiny_model", ["backend=transformer"])


@pytest.fixture(scope="session")
def baseline_model_dir(tmp_path_factory) -> Path:
    """A complete TF-IDF baseline model directory trained on mini_gold."""
    return _train_session_model(tmp_path_factory, "baseline_model", ["backend=baseline"])
