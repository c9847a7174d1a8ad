"""Per-metric statistics and their text table."""

from __future__ import annotations

import math

import pytest

from loopwise.record import Run, RunReader
from loopwise.record.stats import infer_mode, metric_stats, render_stats, run_stats, slope


def test_statistics_of_a_known_series():
    s = metric_stats("val_loss", [0, 1, 2, 3, 4], [4.0, 2.0, 1.0, 3.0, 5.0], window=3)
    assert (s.count, s.nonfinite, s.mode) == (5, 0, "min")
    assert (s.min, s.max, s.mean, s.last, s.last_step) == (1.0, 5.0, 3.0, 5.0, 4)
    assert (s.best, s.best_step) == (1.0, 2)
    assert s.slope == pytest.approx(2.0)  # the last 3 points: 1, 3, 5


def test_best_of_an_accuracy_is_its_maximum_and_the_first_occurrence_wins():
    s = metric_stats("val_acc", [10, 20, 30, 40], [0.5, 0.9, 0.9, 0.7])
    assert (s.mode, s.best, s.best_step) == ("max", 0.9, 20)
    assert metric_stats("val_acc", [1, 2], [0.5, 0.9], mode="min").best == 0.5


@pytest.mark.parametrize(("key", "mode"), [
    ("loss", "min"), ("val_loss", "min"), ("acc", "max"), ("accuracy", "max"),
    ("val_f1", "max"), ("top5", "max"), ("acc_loss", "min"), ("lr", "min"), ("mse", "min"),
])
def test_infer_mode(key, mode):
    assert infer_mode(key) == mode


def test_non_finite_values_are_counted_and_left_out():
    s = metric_stats("loss", [0, 1, 2, 3], [1.0, math.nan, math.inf, 3.0])
    assert (s.count, s.nonfinite, s.min, s.max, s.mean) == (4, 2, 1.0, 3.0, 2.0)
    empty = metric_stats("loss", [0], [math.nan])
    assert (empty.min, empty.best, empty.slope) == (None, None, None)


def test_slope():
    assert slope([0, 1, 2], [1.0, 3.0, 5.0]) == pytest.approx(2.0)
    assert slope([1], [1.0]) is None
    assert slope([2, 2], [1.0, 3.0]) is None


def test_run_stats_from_a_real_run(tmp_path):
    with Run.create(tmp_path, "r") as run:
        for step in range(30):
            run.log_scalars({"loss": 1.0 / (step + 1), "acc": step / 30}, step=step)
    stats = run_stats(RunReader(run.path), window=10)
    assert list(stats) == ["loss", "acc"]
    assert stats["loss"].best_step == 29 and stats["acc"].best == pytest.approx(29 / 30)
    assert stats["acc"].slope == pytest.approx(1 / 30)
    only = run_stats(RunReader(run.path), keys=["acc"], modes={"acc": "min"})
    assert list(only) == ["acc"] and only["acc"].best == 0.0


def test_render_stats_table():
    text = render_stats({
        "loss": metric_stats("loss", [0, 1, 2], [2.0, 1.0, math.nan]),
        "acc": metric_stats("acc", [0, 1, 2], [0.5, 0.75, 0.8]),
    })
    assert text.splitlines() == [
        "Metric statistics",
        "metric  n  min  max    mean  last       best  @step  slope/step",
        "------  -  ---  ---  ------  ----  ---------  -----  ----------",
        "loss    3    1    2     1.5     1    1 (min)      1          -1",
        "acc     3  0.5  0.8  0.6833   0.8  0.8 (max)      2        0.15",
        "loss: 1 non-finite value(s) left out",
    ]
    assert render_stats([], title=None) == "metric  n  min  max  mean  last  best  @step  " \
        "slope/step\n------  -  ---  ---  ----  ----  ----  -----  ----------\n" \
        "(no metrics recorded)"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"window": 1}, r"window must be an int >= 2 \(points in the slope fit\), got 1"),
    ({"mode": "best"}, "mode must be 'min', 'max' or 'auto'"),
])
def test_invalid_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        metric_stats("loss", [0, 1], [1.0, 2.0], **kwargs)


def test_mismatched_lengths_and_bad_reader():
    with pytest.raises(ValueError, match="loss: steps and values differ in length"):
        metric_stats("loss", [0, 1], [1.0])
    with pytest.raises(TypeError, match="reader must be a RunReader"):
        run_stats(object())
    with pytest.raises(TypeError, match="render_stats takes MetricStats"):
        render_stats([1])


def test_a_long_series_gives_the_figures_of_the_point_by_point_rules() -> None:
    from array import array

    n = 30_000  # long enough for the numpy path
    values = [math.sin(i / 100) for i in range(n)]
    values[7] = values[20_007] = -5.0  # the best twice: the first one is named
    values[9], values[10], values[11] = math.nan, math.inf, -math.inf
    steps = list(range(3, n + 3))
    got = metric_stats("loss", array("q", steps), array("d", values))
    assert got.count == n and got.nonfinite == 3
    assert got.best == got.min == -5.0 and got.best_step == 10
    finite = [v for v in values if math.isfinite(v)]
    assert got.max == max(finite) and got.mean == math.fsum(finite) / len(finite)
    assert got.last == values[-1] and got.last_step == n + 2
    tail = [(float(s), v) for s, v in zip(steps, values) if math.isfinite(v)][-got.window:]
    assert got.slope == slope([s for s, _ in tail], [v for _, v in tail])
    assert metric_stats("acc", steps, values).best_step == \
        steps[max(range(n), key=lambda i: values[i] if math.isfinite(values[i]) else -9)]
