"""Fuzzing what a training script hands loopwise: ``log()`` keys and values (Run,
TrainingMonitor, TrainingSession) and run names. Every input is recorded exactly or refused
with a TypeError/ValueError that says what was wrong; a refused call records nothing, an
accepted one loses nothing; the record's views (``loopwise show/runs/compare/doctor/export``)
print no escape sequence and write no CSV formula; no run folder lands outside its root."""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _fuzz_tools import (
    HOSTILE,
    assert_clean_cli,
    assert_no_formula,
    fuzz_settings,
    hostile_text,
    run_cli,
    tree,
)
from hypothesis import given
from hypothesis import strategies as st

from loopwise import TrainingMonitor, TrainingSession
from loopwise.record import Run, RunReader
from loopwise.record.names import NAME_RULE

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.booleans(), st.none(),
    st.text(max_size=5), st.floats(width=32).map(np.float32), st.integers(-2**62, 2**62).map(np.int64),
    st.floats(allow_nan=False, width=32).map(lambda v: torch.tensor(v)),
    st.lists(st.floats(width=32), min_size=0, max_size=3).map(torch.tensor),
    st.lists(st.floats(), max_size=2))
keys = st.one_of(hostile_text, st.integers(), st.none())
rows = st.lists(st.dictionaries(keys, values, min_size=1, max_size=4), min_size=1, max_size=6)
_counter = itertools.count()


def _expected(value: Any) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _check_refusal(exc: Exception) -> None:
    assert isinstance(exc, (TypeError, ValueError)), repr(exc)
    message = str(exc)
    assert message and "Traceback" not in message
    assert any(w in message for w in ("must", "cannot", "got", "give", "metric")), message


def _check_views(root: Path, run: Path, out: Path) -> None:
    """Every view of a run with hostile names: no escape on the terminal, no CSV formula."""
    for argv in (["runs", str(root)], ["show", str(run)], ["compare", str(run), str(run)],
                 ["doctor", str(run)], ["export", str(run), str(out)]):
        code, stdout, stderr = run_cli(argv)
        assert_clean_cli(code, stdout, stderr, argv)
        assert code in (0, 1), (argv, stderr)  # doctor: 1 = findings
    assert_no_formula(out)


@given(rows=rows)
@fuzz_settings(60)
def test_run_log_scalars_records_exactly_what_it_accepts(rows: list[dict[Any, Any]],
                                                         tmp_path: Path) -> None:
    root = tmp_path / f"r{next(_counter)}"
    accepted: dict[str, list[tuple[int, float]]] = {}
    with Run.create(root, "fuzz") as run:
        for step, row in enumerate(rows, 1):
            try:
                run.log_scalars(row, step=step)
            except Exception as exc:
                _check_refusal(exc)
                continue
            for key, value in row.items():
                assert isinstance(key, str) and key.strip(), f"key {key!r} was accepted"
                accepted.setdefault(key, []).append((step, _expected(value)))
    reader = RunReader(run.path)
    assert set(reader.keys()) == set(accepted)
    for key, points in accepted.items():
        series = reader.series(key)
        assert list(series.steps) == [s for s, _ in points], key
        assert all(_same(a, b) for a, (_, b) in zip(series.values, points)), key
    _check_views(root, run.path, root / "out.csv")


@given(rows=rows)
@fuzz_settings(40)
def test_training_monitor_log_is_all_or_nothing_and_loses_nothing(
        rows: list[dict[Any, Any]], tmp_path: Path) -> None:
    root = tmp_path / f"m{next(_counter)}"
    shown = io.StringIO()
    accepted: dict[str, list[float]] = {}
    monitor = TrainingMonitor(range(len(rows)), root=root, file=shown, system=False)
    for _, row in zip(monitor, rows):
        try:
            monitor.log(row)
        except Exception as exc:
            _check_refusal(exc)
            continue
        for key, value in row.items():
            assert isinstance(key, str) and key.strip(), f"key {key!r} was accepted"
            accepted.setdefault(key, []).append(_expected(value))
    monitor.close()
    reader = RunReader(monitor.run.path)
    assert reader.info["status"] == "finished"
    for key, logged in accepted.items():
        if key.startswith("epoch/"):
            continue  # shares its name with another key's epoch summary
        got = list(reader.series(key).values)
        assert len(got) == len(logged) and all(map(_same, got, logged)), key
    _check_views(root, monitor.run.path, root / "out.csv")


@given(metrics=st.lists(st.dictionaries(hostile_text, values, max_size=3), min_size=2,
                        max_size=4), loss=values)
@fuzz_settings(25)
def test_training_session_refuses_bad_values_and_records_the_rest(
        metrics: list[dict[str, Any]], loss: Any, tmp_path: Path) -> None:
    root = tmp_path / f"s{next(_counter)}"
    steps = len(metrics)
    session = TrainingSession("fuzz", 1, steps, 1, root=root, file=io.StringIO(), system=False)
    session.start_training()
    session.start_epoch(1)
    accepted = 0
    for step, extra in enumerate(metrics, 1):
        try:
            session.update_training_progress(step, loss if step == 1 else 0.5, 0.5, extra)
        except Exception as exc:
            _check_refusal(exc)
            continue
        accepted += 1
        assert all(isinstance(k, str) and k.strip() for k in extra), extra
    session.finish_training_epoch()
    session.start_validation()
    session.update_validation_progress(1, 0.25, 0.5)
    session.finish_validation_epoch()
    session.close()
    reader = RunReader(session.run.path) if session.run is not None else None
    assert reader is not None and reader.info["status"] == "finished"
    recorded = len(reader.series("accuracy").values) if "accuracy" in reader.keys() else 0
    assert recorded == accepted  # every accepted step, once
    _check_views(root, reader.path, root / "out.csv")


@given(name=st.one_of(hostile_text, st.sampled_from(HOSTILE), st.integers(), st.none()))
@fuzz_settings(150)
def test_run_names_stay_in_the_root_or_are_refused_with_the_rule(name: Any,
                                                                 tmp_path: Path) -> None:
    base = tmp_path / f"n{next(_counter)}"
    root = base / "runs"
    root.mkdir(parents=True)
    try:
        run = Run.create(root, name)
    except (TypeError, ValueError) as exc:
        assert NAME_RULE in str(exc), str(exc)
        assert tree(base) == {"runs"}  # nothing made
        return
    run.close()
    assert run.path.parent == root.absolute() and run.path.is_dir()
    assert name is None or run.name == name  # kept as given, never rewritten
    assert {p.split("/")[0] for p in tree(base)} == {"runs"}  # nothing outside the root


def test_log_scalars_checks_the_key_of_a_float_too(tmp_path: Path) -> None:
    """Regression found by the fuzzer: a float value skipped the key check, so '' and ' '
    became series and an int key crashed the store's writer thread (the run then lost what
    followed)."""
    with Run.create(tmp_path, "exp") as run:
        for key in ("", " "):
            with pytest.raises(ValueError, match="metric name must be a non-empty string"):
                run.log_scalars({key: 1.0}, step=1)
        with pytest.raises(TypeError, match=r"metric name must be a string, got int \(5\)"):
            run.log_scalars({5: 1.0}, step=1)  # type: ignore[dict-item]
        run.log_scalars({"loss": 1.0}, step=2)
    reader = RunReader(run.path)
    assert reader.keys() == ["loss"] and list(reader.series("loss").steps) == [2]


def test_series_near_the_float_limit_have_statistics(tmp_path: Path) -> None:
    """Regression found by the soak: two values near 1e308 made ``loopwise show`` (the
    statistics' mean, ``math.fsum``) end in an OverflowError traceback."""
    with Run.create(tmp_path / "runs", "big") as run:
        run.log_scalars({"loss": 1.7e308}, step=1)
        run.log_scalars({"loss": 1.7e308}, step=2)
    stats = RunReader(run.path).stats()["loss"]
    assert stats.mean == 1.7e308 and stats.slope == 0.0
    code, out, err = run_cli(["show", str(run.path)])
    assert code == 0 and "1.7e+308" in out, err
