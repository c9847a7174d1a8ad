"""Improvement: the one "is this better?" rule, and mode="auto" read from the metric's name."""

from __future__ import annotations

import math

import pytest

from loopwise.watch.improvement import Improvement, check_mode, resolve_mode


@pytest.mark.parametrize("name", [
    "acc", "val_acc", "accuracy", "val_accuracy", "auc", "val_auroc", "f1", "val_f1_score",
    "precision", "recall", "top5", "val_top_5_acc", "top_k_categorical_accuracy", "iou",
    "val_mIoU", "dice", "mAP", "map50", "AP50", "r2", "psnr", "epoch/val_acc",
])
def test_auto_maximises_score_names(name: str) -> None:
    assert resolve_mode("auto", name) == "max"
    assert Improvement(mode="auto", monitor=name).mode == "max"


@pytest.mark.parametrize("name", [
    "loss", "val_loss", "mse", "val_mae", "perplexity", "lr", "acc_loss", "top5_error",
    "epoch_time_s", "f", "top", "grad_norm",
])
def test_auto_minimises_everything_else(name: str) -> None:
    assert resolve_mode("auto", name) == "min"


def test_auto_accuracy_keeps_the_highest_value() -> None:
    rule = Improvement(mode="auto", monitor="val_acc")
    assert [rule.update(v) for v in (0.5, 0.7, 0.6, 0.9)] == [True, True, False, True]
    assert (rule.best, rule.best_step) == (0.9, 4)
    assert not rule.update(math.nan)


def test_explicit_modes_still_win_over_the_name() -> None:
    rule = Improvement(mode="min", monitor="val_acc")
    assert [rule.update(v) for v in (0.5, 0.7, 0.4)] == [True, False, True]
    assert resolve_mode("max", "val_loss") == "max"


def test_bad_mode_and_auto_without_a_name_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"mode must be one of 'min', 'max', 'auto'; got "
                                         r"'maximise' \('auto' reads the metric name"):
        Improvement(mode="maximise")
    with pytest.raises(ValueError, match=r"mode must be one of 'min', 'max'; got 'auto'$"):
        check_mode("auto", allow_auto=False)
    with pytest.raises(ValueError, match=r"mode='auto' infers 'min' or 'max' from the monitored "
                                         r"metric's name, and none was given \(monitor=None\); "
                                         r"name the metric, or pass mode='min' or mode='max'"):
        Improvement(mode="auto")


def test_state_saved_with_another_mode_says_how_to_resume() -> None:
    old = Improvement(mode="min", monitor="val_acc")
    old.update(0.3)
    rule = Improvement(mode="auto", monitor="val_acc")
    with pytest.raises(ValueError, match=r"the saved state of 'val_acc' was kept with mode "
                                         r"'min', this object has mode 'max'; pass mode='min' "
                                         r"to resume it as it was saved"):
        rule.load_state_dict(old.state_dict())
    again = Improvement(mode="min", monitor="val_acc")
    again.load_state_dict(old.state_dict())
    assert again.best == 0.3
