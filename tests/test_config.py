"""Strict configuration: the YAML files hold every default; unknown keys and wrong types are errors."""

import dataclasses

import pytest

from policytag import config as C
from policytag.errors import ConfigError


@pytest.mark.parametrize("name", ["default", "tiny", "gpu", "predict", "app"])
def test_every_shipped_config_loads_and_validates(name):
    cfg = C.load_config(name)
    assert cfg["_source"].endswith(f"{name}.yaml")


def test_options_are_typed_dataclasses():
    opts = C.load_options("default")
    assert isinstance(opts, C.TrainConfig)
    assert isinstance(opts.training.epochs, int) and isinstance(opts.training.learning_rate, float)
    assert C.load_options("tiny").model.base == "tiny:bert"  # extends: default, then overrides
    assert isinstance(C.load_options("predict"), C.PredictConfig)


def test_dataclasses_declare_no_defaults():
    """The YAML is the only place defaults live."""
    for schema in list(C.SCHEMAS.values()):
        stack = [schema]
        while stack:
            cls = stack.pop()
            for f in dataclasses.fields(cls):
                assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, \
                    f"{cls.__name__}.{f.name} has a default in code"
                if dataclasses.is_dataclass(f.type) or (isinstance(f.type, str) and f.type.endswith("Options")):
                    stack.append(getattr(C, f.type) if isinstance(f.type, str) else f.type)


def test_unknown_key_names_the_key_and_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"unknown key 'training.epoch'.*epochs"):
        C.load_config("default", ["training.epoch=3"])
    with pytest.raises(ConfigError, match="unknown section 'trainng'"):
        C.load_config("default", ["trainng.epochs=3"])


@pytest.mark.parametrize("name,override,key", [
    ("default", "training.epochs=abc", "training.epochs"),
    ("predict", "predict.batch_size=abc", "predict.batch_size"),
    ("default", "model.use_context=maybe", "model.use_context"),
    ("app", "limits.max_chars=abc", "limits.max_chars"),
])
def test_wrong_type_is_an_error_naming_the_key(name, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        C.load_config(name, [override])


def test_overrides_are_parsed_as_yaml_scalars():
    cfg = C.load_config("default", ["training.epochs=3", "model.train_layers=null", "training.learning_rate=1e-4"])
    assert cfg["training"]["epochs"] == 3 and cfg["model"]["train_layers"] is None
    assert C.load_options("default", ["training.learning_rate=1e-4"]).training.learning_rate == 1e-4


def test_a_user_config_file_with_a_typo_is_refused(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("extends: default\ntraining:\n  epoch: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="epoch"):
        C.load_config(str(p))


def test_override_without_equals_sign():
    with pytest.raises(ConfigError, match="section.key=value"):
        C.load_config("default", ["training.epochs"])
