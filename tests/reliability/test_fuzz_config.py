"""Fuzzing ``TrainingConfig``: constructor keywords, ``update()`` and config files. A config
either validates (and then saves and loads back equal) or the error names the field or the
file; a refused ``update()`` changes nothing."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _fuzz_tools import fuzz_settings, hostile_text
from hypothesis import given
from hypothesis import strategies as st

from loopwise.train.fit.config import TrainingConfig

FIELDS = TrainingConfig.field_names()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3), max_leaves=5)
any_values = st.one_of(json_values, st.integers(-2**70, 2**70), st.floats(0, 1),
                       st.integers(0, 300).map(np.int64), st.floats(0, 1, width=32).map(np.float32),
                       st.sampled_from(["cpu", "cuda:0", "auto", "mps", "cuda:x", "model-1"]),
                       st.just(object()), st.just(float("nan")), st.just(float("inf")))
keys = st.one_of(st.sampled_from(FIELDS), hostile_text)
kwargs = st.dictionaries(keys, any_values, max_size=4)
_counter = itertools.count()


def _assert_clear(exc: BaseException, *, file: Path | None = None) -> None:
    assert isinstance(exc, (TypeError, ValueError, FileNotFoundError)), repr(exc)
    text = str(exc)
    named = "TrainingConfig" in text or (file is not None and str(file) in text)
    assert named, f"the error names neither the config nor the file: {text!r}"


def _round_trip(cfg: TrainingConfig, folder: Path) -> None:
    path = folder / f"cfg{next(_counter)}.json"
    cfg.save(path)
    assert TrainingConfig.load(path) == cfg
    json.dumps(cfg.to_dict(), allow_nan=False)  # plain JSON, no NaN


@given(kw=kwargs)
@fuzz_settings(150)
def test_constructor_validates_or_names_the_field(kw: dict[str, Any], tmp_path: Path) -> None:
    try:
        cfg = TrainingConfig(**kw)
    except Exception as exc:
        _assert_clear(exc)
        return
    assert set(kw) <= set(FIELDS)
    _round_trip(cfg, tmp_path)


@given(first=kwargs, second=kwargs)
@fuzz_settings(150)
def test_update_is_all_or_nothing(first: dict[str, Any], second: dict[str, Any],
                                  tmp_path: Path) -> None:
    cfg = TrainingConfig()
    for kw in (first, second):
        before = cfg.to_dict()
        try:
            cfg.update(**kw)
        except Exception as exc:
            _assert_clear(exc)
            assert cfg.to_dict() == before, "a refused update changed the config"
            continue
        assert set(kw) <= set(FIELDS)
    _round_trip(cfg, tmp_path)


def _file_texts() -> st.SearchStrategy[bytes]:
    valid = TrainingConfig().to_dict()
    mutated = st.dictionaries(st.sampled_from(FIELDS), any_values.filter(
        lambda v: not isinstance(v, (object().__class__,)) or v is None or isinstance(
            v, (bool, int, float, str, list, dict))), max_size=3).map(
        lambda d: json.dumps({**valid, **{k: v for k, v in d.items() if _jsonable(v)}}).encode())
    return st.one_of(st.binary(max_size=40), json_values.map(lambda v: json.dumps(v).encode()),
                     mutated, mutated.map(lambda b: b[: len(b) // 2]),
                     st.just(b"\xff\xfe{}"), st.just(b""), st.just(b"[" * 5000))


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


@given(content=_file_texts())
@fuzz_settings(150)
def test_config_files_load_or_name_the_file(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / f"in{next(_counter)}.json"
    path.write_bytes(content)
    try:
        cfg = TrainingConfig.load(path)
    except Exception as exc:
        _assert_clear(exc, file=path)
        return
    _round_trip(cfg, tmp_path)


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe{}", "not UTF-8 text (byte 0: invalid start byte)"),
    (b"[" * 100_000, "JSON nested too deeply to be a TrainingConfig"),
])
def test_undecodable_config_files_name_the_file(content: bytes, message: str,
                                                tmp_path: Path) -> None:
    """Regressions found by the fuzzer: a UnicodeDecodeError naming no file, and a
    RecursionError, escaped ``TrainingConfig.load``."""
    path = tmp_path / "c.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(f"{path}: {message}; fix the file")):
        TrainingConfig.load(path)
