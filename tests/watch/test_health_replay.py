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
