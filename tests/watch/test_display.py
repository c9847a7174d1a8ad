"""The one display rule: which names are percentages, the number format, the rate unit, which
values show their last value, and user text made printable."""

from __future__ import annotations

import numpy as np
import pytest

from loopwise.watch.display import (
    base_name,
    format_metrics,
    format_rate,
    format_value,
    is_percentage,
    shown_values,
    shows_last,
)


@pytest.mark.parametrize(
    "name",
    ["acc", "accuracy", "Accuracy", "val_acc", "train_accuracy", "test_acc", "top5_ACC",
     "balanced_accuracy", "top1", "top5", "epoch/val_accuracy", "train/accuracy",
     "epoch/train_top5_acc"],
)
def test_accuracy_names_are_percentages(name: str) -> None:
    assert is_percentage(name)
    assert format_value(name, 0.125) == "12.50%"


@pytest.mark.parametrize(
    "name",
    ["grad_accum_steps", "acc_steps", "accumulate", "loss", "val_loss", "lr", "precision",
     "recall", "f1", "auc", "f1_score", "top", "train_", "accuracy_top5", "epoch/acc_steps"],
)
def test_other_names_are_numbers(name: str) -> None:
    assert not is_percentage(name)
    assert not format_value(name, 0.5).endswith("%")


def test_grad_accum_steps_is_never_a_percentage() -> None:
    assert format_value("grad_accum_steps", 4) == "4"
    assert format_value("grad_accum_steps", 4.0) == "4.0000"
    assert format_value("acc_steps", 1) == "1"


def test_a_percentage_only_for_values_in_0_1() -> None:
    assert format_value("accuracy", 1.0) == "100.00%"
    assert format_value("accuracy", 1) == "1"  # an int is a count: grad_acc=1 is not 100.00%
    assert format_value("grad_acc", np.int64(1)) == "1"
    assert format_value("accuracy", 0.0) == "0.00%"
    assert format_value("accuracy", -0.0) == "0.00%"
    assert format_value("accuracy", 90.0) == "90.0000"  # logged in percent already
    assert format_value("accuracy", -0.5) == "-0.5000"


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.231, "0.2310"), (2.3089, "2.3089"), (12.0, "12.0000"), (0.001, "0.0010"),
     (1e-4, "1.0000e-04"), (-1e-4, "-1.0000e-04"), (123456.0, "1.2346e+05"),
     (99999.0, "99999.0000"), (0.0, "0.0000"), (4, "4"), (np.int64(-3), "-3"),
     (np.float32(0.5), "0.5000"), (float("nan"), "nan"), (float("inf"), "inf"),
     (float("-inf"), "-inf")],
)
def test_number_format(value: float, text: str) -> None:
    assert format_value("loss", value) == text


def test_nonfinite_accuracy_spelled_out() -> None:
    assert format_value("accuracy", float("nan")) == "nan"
    assert format_value("accuracy", float("inf")) == "inf"


def test_format_metrics_styles() -> None:
    values = {"loss": 0.231, "accuracy": 0.9, "lr": 0.05}
    assert format_metrics(values) == "loss=0.2310, accuracy=90.00%, lr=0.0500"
    assert format_metrics(values, style="label") == "Loss: 0.2310, Accuracy: 90.00%, lr: 0.0500"
    assert format_metrics(values, sep=" | ") == "loss=0.2310 | accuracy=90.00% | lr=0.0500"
    assert format_metrics({}) == ""


def test_names_are_printable() -> None:
    evil = "loss\x1b]0;owned\x07"
    assert format_metrics({evil: 1.5}) == "loss\\x1b]0;owned\\x07=1.5000"
    assert "\x1b" not in format_metrics({evil: 1.5}, style="label")


def test_rate_is_one_unit_never_inverted() -> None:
    assert format_rate(100, 15.5) == "6.45batch/s"
    assert format_rate(1, 4.0) == "0.25batch/s"
    assert format_rate(1, 1000.0) == "0.001batch/s"
    assert format_rate(3, 0.0001) == "30000.00batch/s"
    assert format_rate(0, 5.0) == "?batch/s"
    assert format_rate(5, 0.0) == "?batch/s"


@pytest.mark.parametrize(
    "name",
    ["lr", "lr/group1", "learning_rate", "epoch/lr", "train/lr", "val_loss", "val_accuracy",
     "epoch/val_loss", "val/loss", "LR"],
)
def test_shows_last_for_lr_and_validation(name: str) -> None:
    assert shows_last(name)


@pytest.mark.parametrize("name", ["loss", "accuracy", "train/loss", "epoch/train_loss",
                                  "lr_warmup_steps", "interval", "valid"])
def test_running_mean_for_the_rest(name: str) -> None:
    assert not shows_last(name)


def test_user_marked_stateful_metrics() -> None:
    assert shows_last("best_f1", stateful={"best_f1"})
    assert shows_last("best_f1", ["best_f1"])
    assert not shows_last("best_f1")
    means = {"loss": 0.5, "lr": 0.01, "val_loss": 0.7, "best_f1": 0.8, "new": 1.0}
    last = {"loss": 0.4, "lr": 0.001, "val_loss": 0.6, "best_f1": 0.9}
    assert shown_values(means, last, stateful={"best_f1"}) == {
        "loss": 0.5, "lr": 0.001, "val_loss": 0.6, "best_f1": 0.9, "new": 1.0}


def test_base_name() -> None:
    assert base_name("epoch/val_accuracy") == "accuracy"
    assert base_name("train_top5_acc") == "top5_acc"
    assert base_name("val_") == "val_"


def test_errors_name_what_is_wrong() -> None:
    with pytest.raises(TypeError, match=r"a metric name must be a string, got int \(3\)"):
        format_value(3, 0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="the value of 'loss' must be a real number .*got str"):
        format_value("loss", "0.5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got bool"):
        format_value("accuracy", True)
    with pytest.raises(TypeError, match="values must be a mapping of name -> number, got list"):
        format_metrics([("loss", 1.0)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="style must be 'kv' .* or 'label' .*, got 'table'"):
        format_metrics({"loss": 1.0}, style="table")
    with pytest.raises(TypeError, match="sep must be a string, got NoneType"):
        format_metrics({"loss": 1.0}, sep=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be a number >= 0, got -1"):
        format_rate(-1, 1.0)
    with pytest.raises(ValueError, match="seconds must be a number >= 0, got nan"):
        format_rate(1, float("nan"))
    with pytest.raises(TypeError, match="stateful must be a collection of metric names .*str"):
        shows_last("lr", "lr")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a metric name must be a string, got int"):
        shows_last("lr", {1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="means and last must be mappings"):
        shown_values({"a": 1.0}, None)  # type: ignore[arg-type]
