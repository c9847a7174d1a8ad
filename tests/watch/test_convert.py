"""The one converter (watch/convert.py): what a loop logs -> what the record holds, and the
same rule for the values read now (a bar's line, an epoch's result, Keras's logs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loopwise.train.workflow.checks import clean_metrics
from loopwise.watch.bar_line import metric_numbers
from loopwise.watch.convert import to_float, to_floats, to_value


def test_numbers_tensors_and_numpy_become_floats() -> None:
    assert to_value("loss", 0.5) == 0.5
    assert to_value("n", 3) == 3.0 and type(to_value("n", 3)) is float
    assert to_value("loss", torch.tensor([0.25])) == 0.25
    assert to_value("loss", np.float32(0.5)) == 0.5
    assert to_float("loss", np.array([[2.0]])) == 2.0
    assert to_floats([torch.tensor(1.5), 2, torch.tensor([0.5], dtype=torch.float16)]) == \
        [1.5, 2.0, 0.5]
    assert to_floats([]) == []


@pytest.mark.parametrize(("value", "error", "message"), [
    (True, TypeError, "metric 'loss' must be a real number"),
    ("0.1", TypeError, "metric 'loss' must be a real number"),
    (torch.ones(2), ValueError, r"metric 'loss' is a tensor of shape \(2,\); log a one-element"),
    (torch.tensor(True), TypeError, "metric 'loss' is a torch.bool tensor"),
    (np.ones(3), ValueError, r"metric 'loss' is an array of shape \(3,\)"),
    (10**400, ValueError, "metric 'loss' is an int too large for a float64"),
])
def test_refusals_name_the_metric(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        to_value("loss", value)
    with pytest.raises(error, match=message.replace("metric 'loss'", "train_loss")):
        to_float("loss", value, what="train_loss")


def test_every_reader_now_goes_through_the_converter() -> None:
    # the bar's line, a Workflow's epoch metrics: the same rule, the same refusals
    assert metric_numbers({"loss": torch.tensor(0.5), "n": 3}) == {"loss": 0.5, "n": 3}
    assert clean_metrics({"train_loss": torch.tensor([0.5]), "acc": np.float64(0.25)},
                         "train_loop()") == {"train_loss": 0.5, "acc": 0.25}
    with pytest.raises(TypeError, match=r"train_loop\(\) returned 'x' = tensor.*metric values "
                                        "must be numbers"):
        clean_metrics({"x": torch.ones(3)}, "train_loop()")
