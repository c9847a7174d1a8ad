"""TrainingConfig: documented defaults, validated updates, exact JSON round trip, clear errors."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from loopwise.train.fit.config import TrainingConfig


def test_defaults_are_the_documented_ones() -> None:
    cfg = TrainingConfig()
    assert (cfg.learning_rate, cfg.batch_size, cfg.epochs) == (1e-3, 32, 100)
    assert (cfg.hidden_size, cfg.num_layers, cfg.patience) == (256, 3, 20)
    assert cfg.use_mixed_precision is False and cfg.num_workers == 0 and cfg.seed == 42
    assert cfg.grad_clip is None and cfg.checkpoint_every == 10  # no clipping unless asked
    assert cfg.max_oom_skips == 5
    text = importlib.import_module(TrainingConfig.__module__).__doc__ or ""
    for name in TrainingConfig.field_names():
        assert name in text, f"{name} is not documented in the module docstring"


def test_update_sets_fields_and_returns_the_config() -> None:
    cfg = TrainingConfig()
    assert cfg.update(hidden_size=1024, num_layers=8, batch_size=128,
                      use_mixed_precision=True) is cfg
    assert (cfg.hidden_size, cfg.num_layers, cfg.batch_size) == (1024, 8, 128)
    assert cfg.use_mixed_precision is True


def test_unknown_key_lists_the_valid_ones_and_changes_nothing() -> None:
    cfg = TrainingConfig()
    with pytest.raises(ValueError, match=r"unknown TrainingConfig key 'lr'; valid keys: "
                                         r"model_name, learning_rate, batch_size"):
        cfg.update(batch_size=64, lr=0.1)
    assert cfg.batch_size == 32  # validated before anything changed


def test_attribute_typo_is_an_error_not_a_silent_new_attribute() -> None:
    cfg = TrainingConfig()
    with pytest.raises(ValueError, match="unknown TrainingConfig key 'learnig_rate'"):
        cfg.learnig_rate = 0.1  # type: ignore[attr-defined]


@pytest.mark.parametrize(("key", "value", "error", "message"), [
    ("batch_size", 0, ValueError, r"TrainingConfig.batch_size must be an int >= 1, got 0"),
    ("batch_size", "32", TypeError, r"batch_size must be an int, got str"),
    ("batch_size", 2.5, TypeError, r"batch_size must be an int, got float"),
    ("learning_rate", -1.0, ValueError, r"learning_rate must be a finite number > 0, got -1.0"),
    ("learning_rate", float("nan"), ValueError, r"learning_rate must be a finite number > 0, got nan"),
    ("use_mixed_precision", 1, TypeError, r"use_mixed_precision must be true or false; got 1"),
    ("dropout", 1.0, ValueError, r"dropout must be a finite number in \[0, 1\), got 1.0"),
    ("grad_clip", 0, ValueError, r"grad_clip must be a finite number > 0 \(or null for no clipping\), got 0"),
    ("device", "gpu", ValueError, r"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ("model_name", "a/b", ValueError, r"model_name must be letters, digits"),
    ("patience", True, TypeError, r"patience must be an int \(0 turns early stopping off\), got bool"),
    ("learning_rate", 10**400, ValueError, r"TrainingConfig.learning_rate must be a finite number > 0, "
                                           r"got an integer of about 401 digits, too large for "
                                           r"a float"),
    ("model_name", "net\n", ValueError, r"model_name must be letters, digits, '-', '_' or '.', "
                                        r"1 to 100 characters; got 'net\\n'"),
    ("device", "cpu\n", ValueError, r"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; "
                                    r"got 'cpu\\n'"),
    ("max_oom_skips", 0, ValueError, r"max_oom_skips must be an int >= 1, got 0"),
    ("batch_size", np.bool_(True), TypeError, r"batch_size must be an int, got bool"),
])
def test_wrong_type_or_range_names_the_field_and_the_allowed_values(
        key: str, value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        TrainingConfig().update(**{key: value})
    with pytest.raises(error, match=message):
        TrainingConfig(**{key: value})  # type: ignore[arg-type]


def test_numpy_scalars_are_accepted_as_plain_numbers() -> None:
    cfg = TrainingConfig(batch_size=np.int64(64), learning_rate=np.float32(0.1),  # type: ignore[arg-type]
                         epochs=np.int32(3), dropout=np.float64(0.25))  # type: ignore[arg-type]
    assert (cfg.batch_size, cfg.learning_rate, cfg.epochs, cfg.dropout) == (64, 0.1, 3, 0.25)
    assert [type(v) for v in (cfg.batch_size, cfg.learning_rate, cfg.epochs, cfg.dropout)] == [
        int, float, int, float]
    cfg.update(hidden_size=np.uint16(128), grad_clip=np.float32(2.5))
    assert (cfg.hidden_size, cfg.grad_clip) == (128, 2.5) and type(cfg.hidden_size) is int
    assert json.loads(json.dumps(cfg.to_dict()))["batch_size"] == 64  # JSON-ready


def test_unknown_constructor_key_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown TrainingConfig key 'bogus'; valid keys: "
                                         r"model_name, learning_rate, batch_size, .*, device, "
                                         r"histogram_every$"):
        TrainingConfig(bogus=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"unknown TrainingConfig keys 'bogus', 'lr'; valid"):
        TrainingConfig(epochs=3, bogus=1, lr=0.1)  # type: ignore[call-arg]


def test_clipping_is_one_option_away() -> None:
    assert TrainingConfig().grad_clip is None
    assert TrainingConfig(grad_clip=1.0).grad_clip == 1.0
    assert TrainingConfig().update(grad_clip=0.5).grad_clip == 0.5


def test_splits_must_leave_training_data() -> None:
    with pytest.raises(ValueError, match=r"val_split \+ test_split must be < 1.*0.5 \+ 0.5"):
        TrainingConfig(val_split=0.5, test_split=0.5)
    cfg = TrainingConfig()
    with pytest.raises(ValueError, match="val_split"):
        cfg.val_split = 0.95


def test_ints_become_floats_for_float_fields() -> None:
    cfg = TrainingConfig(learning_rate=1, grad_clip=2)
    assert isinstance(cfg.learning_rate, float) and isinstance(cfg.grad_clip, float)


def test_save_load_round_trips_exactly(tmp_path: Path) -> None:
    cfg = TrainingConfig(learning_rate=0.1 + 0.2, grad_clip=None, model_name="exp.1",
                         use_mixed_precision=True, device="cuda:1", val_split=0.15)
    path = cfg.save(tmp_path / "cfg.json")
    loaded = TrainingConfig.load(path)
    assert loaded == cfg
    assert loaded.learning_rate == 0.1 + 0.2  # not 0.3: the exact float survives
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file


def test_corrupt_file_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text('{\n  "batch_size": 32,\n  "epochs": 10,,\n}\n')
    with pytest.raises(ValueError, match=re.escape(f"{path}: line 3, column 16: not valid JSON")):
        TrainingConfig.load(path)


def test_unknown_key_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"batch_size": 8, "hidden": 3}))
    with pytest.raises(ValueError, match=re.escape(f"unknown TrainingConfig key 'hidden' in {path}; valid keys")):
        TrainingConfig.load(path)


def test_bad_value_in_a_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"epochs": -3}))
    with pytest.raises(ValueError, match="TrainingConfig.epochs must be an int >= 1, got -3"):
        TrainingConfig.load(path)


def test_missing_file_and_non_object(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no TrainingConfig file at .*nope.json"):
        TrainingConfig.load(tmp_path / "nope.json")
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(TypeError, match=r"needs a dict of fields in .*list.json, got list"):
        TrainingConfig.load(path)
