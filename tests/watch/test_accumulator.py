"""The shared accumulator as the loops use it: exact steps, weights, the active run, the CSV
cadence, log() after the loop, injected clocks."""

from __future__ import annotations

import csv
import io
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from loopwise import TrainingMonitor
from loopwise.record import Run, RunReader
from loopwise.record.active import active_run, end_active_run
from loopwise.watch.accumulator import StepAccumulator


class FakePerf:
    """A perf clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _monitor(iterable, **kw):
    kw.setdefault("file", io.StringIO())
    kw.setdefault("system", False)
    return TrainingMonitor(iterable, **kw)


def test_a_nan_is_reported_at_its_exact_step_and_the_warning_points_at_the_user_line():
    m = _monitor(range(200), mininterval=1e9)  # one refresh window for the whole pass
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in m:
            m.log({"loss": math.nan if i == 150 else 1.0})  # step 151
    (w,) = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert "loss at step 151" in str(w.message)
    assert w.filename == __file__  # the user's line, not loopwise's
    reader = RunReader(m.run.path)
    m.close()
    assert [e.data["step"] for e in reader.events(kind="health.nonfinite")] == [151]
    assert "loss at step 151" in reader.events(kind="nonfinite")[0].message


def test_log_after_the_loop_inside_with_is_recorded_and_after_close_raises():
    with _monitor(range(3)) as m:
        for _ in m:
            m.log({"loss": 1.0})
        m.log({"final_acc": 0.9})  # after the loop, inside the block
    reader = RunReader(m.run.path)
    assert list(reader.series("final_acc").values) == [0.9]
    assert list(reader.series("final_acc").steps) == [3]
    m2 = _monitor(range(10))
    for i in m2:
        if i == 2:
            break
    m2.close()
    with pytest.raises(RuntimeError, match="this TrainingMonitor is closed: nothing logged"):
        m2.log({"loss": 1.0})


def test_seed_000_multi_epoch_loop_gives_one_run_and_one_csv_per_epoch(tmp_path: Path):
    for epoch in range(3):
        m = _monitor(range(4), desc=f"Epoch {epoch + 1}",
                     log_file=tmp_path / f"train_epoch_{epoch + 1}.csv")
        for i in m:
            m.log({"loss": float(epoch * 10 + i)})
    run = active_run()
    assert run is not None and run is m.run and run.global_step == 12
    end_active_run()
    (only,) = list(Path("runs").iterdir())
    reader = RunReader(only)
    assert reader.status == "finished"
    assert list(reader.series("loss").steps) == list(range(1, 13))
    assert list(reader.series("epoch/loss").steps) == [4, 8, 12]
    steps = [[r["step"] for r in csv.DictReader((tmp_path / f"train_epoch_{e}.csv").open())]
             for e in (1, 2, 3)]
    assert steps == [["1", "2", "3", "4"], ["5", "6", "7", "8"], ["9", "10", "11", "12"]]


def test_name_or_run_starts_or_chooses_another_run(tmp_path: Path):
    first = _monitor(range(2))
    list(first)
    other = _monitor(range(2), name="other")
    assert other.run is not first.run and other.step == 0
    given = Run.create(tmp_path, "given")
    third = _monitor(range(2), run=given)
    list(third)
    assert given.global_step == 2 and not given.closed
    given.close()


def test_csv_rows_reach_the_file_at_every_refresh(tmp_path: Path):
    perf = FakePerf()
    m = _monitor(range(100), log_file=tmp_path / "t.csv", perf=perf, mininterval=0.1)
    it = iter(m)
    for i in range(5):
        next(it)
        m.log({"loss": float(i)})
    perf.now += 0.2  # one refresh interval passes: the rows so far are in the file
    next(it)
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5"]
    it.close()


def test_weighted_means_and_explicit_steps():
    acc = StepAccumulator(None)
    acc.add_steps([1, 2], {"loss": [1.0, 4.0]}, weights={"loss": [3.0, 1.0]})
    acc.add_steps([4], {"loss": [0.0]}, weights={"loss": [4.0]})  # step 3 was skipped
    acc.flush()
    assert acc.means() == {"loss": pytest.approx((3 + 4 + 0) / 8)}
    assert acc.step == 4


def test_a_live_spike_is_reported_at_its_own_step_with_its_own_value(tmp_path):
    """Windows of 5 steps: the spike at step 160 (44.24) is reported as the record holds it, not
    as the window's mean at the window's last step."""
    from loopwise.record import Run, RunReader
    from loopwise.watch.health import HealthMonitor, SpikeDetector

    run = Run.create(tmp_path / "runs", name="spiky")
    health = HealthMonitor(run, detectors=[SpikeDetector()], console=None)
    acc = StepAccumulator(run, health=health)
    rng = np.random.default_rng(0)
    for step in range(1, 201):
        value = 44.24 if step == 160 else float(1.0 + rng.normal(0, 0.05))
        acc.add_steps([step], {"loss": [value]})
        if step % 5 == 2:  # the spike sits inside a window (158-162), not at its end
            acc.flush()
    acc.flush()
    run.close()
    spikes = [e for e in RunReader(run.path).events() if e.kind == "health.spike"]
    assert len(spikes) == 1
    assert spikes[0].data["step"] == 160 and spikes[0].data["value"] == 44.24
    assert "spiked to 44.24 at step 160" in spikes[0].message
    series = RunReader(run.path).series("loss")
    assert dict(zip(series.steps, series.values, strict=True))[160] == 44.24


def test_cpu_loss_tensors_take_the_straight_path_and_a_bad_one_still_logs_nothing() -> None:
    import torch

    acc = StepAccumulator(None)
    acc.add_step({"loss": 1.0, "n": 1.0})  # the keys are known: the straight path from here
    acc.times.append(0.0)
    acc.log({"loss": torch.tensor(0.25), "n": torch.tensor(3, dtype=torch.int64)})
    assert acc.plain is False  # a tensor was read: the session's bar still checks the row
    assert [v for v in acc.pending["loss"][1]] == [1.0, 0.25]
    assert all(type(v) is float for v in acc.pending["loss"][1])
    acc.times.append(0.0)
    with pytest.raises(ValueError, match=r"metric 'n' is a tensor of shape \(2,\)"):
        acc.log({"loss": torch.tensor(0.5), "n": torch.tensor([1.0, 2.0])})
    with pytest.raises(TypeError, match="metric 'loss' is a torch.bool tensor"):
        acc.log({"loss": torch.tensor(True)})
    assert acc.pending["loss"][1] == [1.0, 0.25]  # all or nothing: 0.5 was taken back
    assert acc.pending["n"][1] == [1.0, 3]
    acc.flush()
    assert acc.means() == {"loss": 0.625, "n": 2.0}
