"""analyze_run: a run's record replayed through the health detectors."""

from __future__ import annotations

import math

import pytest

from loopwise.record import Run, RunReader
from loopwise.watch.health import analyze_run, render_findings
from loopwise.watch.health.replay import epoch_stream_name


def test_validation_loss_rising_for_five_epochs_is_found(tmp_path):
    # recorded as every entry point records now: per-step loss at global steps, epoch summaries
    # (epoch/loss, epoch/val_loss, epoch/lr) at the step where each epoch ended
    val = [1.0, 0.8, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85]  # best at epoch 3, then 5 epochs rising
    with Run.create(tmp_path, "rising") as run:
        for epoch, v in enumerate(val, start=1):
            for _ in range(10):
                run.log_scalars({"loss": 1.0 / (epoch + 1)}, step=run.advance(1))
            run.log_epoch(epoch, {"loss": 1.0 / (epoch + 1), "val_loss": v, "lr": 0.1,
                                  "seconds": 2.0})
    assert "epoch/val_loss" in RunReader(run.path).keys()
    found = analyze_run(run.path)
    assert [(f.detector, f.key, f.data["epoch"], f.step) for f in found] == [
        ("trend", "val_loss", 6, 60), ("overfitting", "val_loss", 6, 60),
        ("plateau", "val_loss", 8, 80)]  # the epoch, and the global step where it ended
    text = render_findings(found)
    assert "val_loss rising for 3 epochs (0.6 -> 0.75)" in text
    assert "val_loss - loss went 0.35 -> 0.6071" in text
    assert "val_loss has not improved for 5 epochs (best 0.6 at epoch 3)" in text


def test_epoch_summary_names_are_those_of_the_live_epoch_stream():
    names = ("loss", "accuracy", "val_loss", "train_acc", "test_loss", "lr", "lr/head", "seconds")
    assert [epoch_stream_name(n) for n in names] == list(names)


def test_a_source_that_is_not_a_run_is_refused():
    with pytest.raises(TypeError, match="source must be a run folder or a RunReader, got int"):
        analyze_run(3)


def test_series_named_by_hand_at_step_epoch_still_replay(tmp_path):
    with Run.create(tmp_path, "done") as run:
        for step in range(50):
            run.log_scalar("loss", 1.0 / (step + 1) if step != 30 else math.nan, step=step,
                           wall_time=1000.0 + step)
        for epoch in range(12):
            run.log_scalars({"train_loss": 1.0 / (epoch + 1),
                             "val_loss": 0.5 if epoch >= 4 else 1.0 - 0.1 * epoch},
                            step=epoch, wall_time=2000.0 + epoch)
        run.log_system({"steps_per_s": 10.0}, wall_time=2999.0)
    found = analyze_run(RunReader(run.path))
    # val_loss flat from epoch 4 while train_loss keeps falling: overfitting at epoch 7
    # (3 epochs without a new best, gap widening), plateau at epoch 9 (patience 5)
    assert [(f.detector, f.key, f.step) for f in found] == [
        ("nonfinite", "loss", 30), ("overfitting", "val_loss", 7), ("plateau", "val_loss", 9)]
    assert [f.time for f in found] == [1030.0, 2007.0, 2009.0]
    again = analyze_run(str(run.path))
    assert [f.message for f in again] == [f.message for f in found]
    text = render_findings(found)
    assert "nonfinite" in text and "val_loss has not improved for 5 epochs" in text
    assert render_findings([]) == "no health problems found"


def _planted_run(root, name, seed, *, steps=1_500):
    """Step series with spikes, NaNs and plateaus, epoch summaries, series named by hand
    (val_*, at their steps), and system samples with memory growing and steps/s stopping."""
    import numpy as np

    rng = np.random.default_rng(seed)
    with Run.create(root, name) as run:
        t0 = 1000.0
        for key in ("loss", "grad_norm", "aux_loss"):
            values = 1.0 / (1 + np.arange(steps) * 1e-2) + rng.normal(0, 0.01, steps)
            for _ in range(4):
                a = int(rng.integers(0, steps))
                values[a:a + 40] = values[a]
            for _ in range(5):
                values[int(rng.integers(0, steps))] += 5.0
            for _ in range(3):
                values[int(rng.integers(0, steps))] = float(rng.choice([np.nan, np.inf]))
            for i in range(steps):
                run.log_scalar(key, float(values[i]), step=i + 1,
                               wall_time=t0 + i + float(rng.integers(0, 2)))
        epochs = 12
        for epoch in range(1, epochs + 1):
            end = epoch * steps // epochs
            val = 1.0 / epoch if epoch < 5 else 0.2 + 0.01 * epoch
            run.log_epoch(epoch, {"loss": 1.0 / (epoch + 1), "val_loss": val,
                                  "accuracy": math.nan if epoch == 7 else 0.5},
                          step=end)
            run.log_scalars({"val_acc": 0.5 + 0.01 * min(epoch, 4)}, step=end,
                            wall_time=t0 + end)
        for k in range(40):
            run.log_system({"proc_rss_mib": 100.0 + 3 * k, "steps_per_s": 0.0 if k > 30 else 5.0,
                            "data_wait_pct": 60.0 if 10 < k < 20 else 1.0,
                            "cpu_pct.max": 50.0},
                           wall_time=t0 + k * steps / 40)
    return run.path


@pytest.mark.parametrize("seed", range(4))
def test_the_batched_replay_finds_what_the_point_by_point_replay_finds(tmp_path, seed):
    from loopwise.watch.health import (
        InputBoundDetector,
        MemoryLeakDetector,
        SpikeDetector,
        StalledDetector,
    )

    path = _planted_run(tmp_path, f"r{seed}", seed)
    point = analyze_run(path, batch=False)
    batched = analyze_run(path)
    assert [repr(f) for f in batched] == [repr(f) for f in point]
    assert {f.detector for f in point} >= {"nonfinite", "spike", "stalled", "input_bound"}
    custom = [SpikeDetector(keys="*", window=9, min_history=5, threshold=4.0,
                            streams=("step", "epoch")),
              MemoryLeakDetector(keys=("proc_rss_mib", "*loss"), streams=("epoch", "system"),
                                 epochs=2),
              StalledDetector(seconds=50.0), InputBoundDetector(window=2)]
    point = analyze_run(path, batch=False, detectors=custom)
    assert point
    fresh = [SpikeDetector(keys="*", window=9, min_history=5, threshold=4.0,
                           streams=("step", "epoch")),
             MemoryLeakDetector(keys=("proc_rss_mib", "*loss"), streams=("epoch", "system"),
                                epochs=2),
             StalledDetector(seconds=50.0), InputBoundDetector(window=2)]
    assert [repr(f) for f in analyze_run(path, detectors=fresh)] == [repr(f) for f in point]


def test_a_run_without_epochs_or_without_steps_replays_the_same(tmp_path):
    with Run.create(tmp_path, "steps") as run:
        for i in range(200):
            run.log_scalar("loss", math.nan if i in (50, 51, 120) else 1.0, step=i,
                           wall_time=1000.0 + i)
        for k in range(10):
            run.log_system({"steps_per_s": 0.0, "data_wait_pct": 90.0}, wall_time=1000.0 + 100 * k)
    with Run.create(tmp_path, "system") as only:
        for k in range(10):
            only.log_system({"steps_per_s": 0.0}, wall_time=1000.0 + 100 * k)
    for path in (run.path, only.path):
        point = analyze_run(path, batch=False)
        assert point
        assert [repr(f) for f in analyze_run(path)] == [repr(f) for f in point]


def test_batch_must_be_a_bool(tmp_path):
    with pytest.raises(TypeError, match="batch must be True or False, got str"):
        analyze_run(tmp_path, batch="yes")


def _tangled_run(root, seed):
    """What makes the order of arrival subtle: a series named by hand at every step under the
    name an epoch summary also has (val_loss), times out of order, epochs whose times are not
    in their labels' order, system samples at an epoch's own time, a step key also in the
    system samples, and two points at one step."""
    import numpy as np

    rng = np.random.default_rng(seed)
    with Run.create(root, f"t{seed}") as run:
        for i in range(600):
            t = 1000.0 + i + float(rng.choice([0.0, 0.0, -3.5, 2.0]))
            run.log_scalars({"loss": float(rng.choice([1.0, 5.0, math.nan])) if i % 37 == 0
                             else 1.0 / (i + 1) + float(rng.normal(0, 1e-3)),
                             "proc_rss_mib": 10.0 + i}, step=i, wall_time=t)
            run.log_scalars({"val_loss": 0.5 + 0.001 * (i % 50) if i % 3 else math.nan},
                            step=i, wall_time=1000.0 + i + (5.0 if i % 11 == 0 else 0.0))
        run.log_scalars({"loss": 9.0}, step=300, wall_time=1300.0)  # a second point at 300
        for epoch in range(1, 7):
            bad = math.nan if epoch == 3 else None  # two findings of one epoch
            run.log_epoch(epoch, {"loss": bad or 1.0 / epoch, "val_loss": bad or 0.1 * epoch},
                          step=epoch * 100)
        for k in range(30):
            run.log_system({"proc_rss_mib": 50.0 + 5 * k, "steps_per_s": 1.0,
                            "gpu0_util.max": 3.0}, wall_time=1000.0 + 20 * k)
    return run.path


@pytest.mark.parametrize("seed", range(3))
def test_the_batched_replay_keeps_the_order_of_arrival(tmp_path, seed):
    from loopwise.watch.health import (
        MemoryLeakDetector,
        NonFiniteDetector,
        OverfittingDetector,
        PlateauDetector,
        SpikeDetector,
        TrendDetector,
    )

    def detectors():
        return [NonFiniteDetector(streams=("step", "epoch", "system")),
                SpikeDetector(keys="*", window=5, min_history=3, threshold=3.0,
                              streams=("step", "epoch", "system")),
                PlateauDetector(keys="*", patience=4, streams=("epoch", "system")),
                TrendDetector(keys="*", epochs=2, streams=("step", "epoch")),
                MemoryLeakDetector(keys="*", epochs=3, streams=("step", "epoch", "system")),
                OverfittingDetector(epochs=2)]

    path = _tangled_run(tmp_path, seed)
    point = analyze_run(path, batch=False, detectors=detectors())
    assert len({f.detector for f in point}) >= 4
    assert [repr(f) for f in analyze_run(path, detectors=detectors())] == [repr(f) for f in point]
    assert [repr(f) for f in analyze_run(path)] == [repr(f) for f in analyze_run(path,
                                                                                 batch=False)]
