"""ReduceLROnPlateau against known metric sequences: patience, cooldown, min_lr, resume."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from loopwise.train.callbacks import LoopState, ReduceLROnPlateau


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, Any]] = []

    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Any = None) -> None:
        self.items.append((kind, message, data))


def _optimizer(lr: float = 1.0, groups: int = 1) -> torch.optim.Optimizer:
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr * (i + 1)}
              for i in range(groups)]
    return torch.optim.SGD(params, lr=lr)


def _lrs(cb: ReduceLROnPlateau, opt: torch.optim.Optimizer, values: list[float],
         run: Any = None) -> list[float]:
    out = []
    for epoch, value in enumerate(values, start=1):
        cb.on_evaluate(LoopState(epoch=epoch, metrics={"val_loss": value}, optimizer=opt,
                                 run=run))
        out.append(opt.param_groups[0]["lr"])
    return out


def test_accuracy_is_maximised_by_default() -> None:
    opt, events = _optimizer(), Events()
    cb = ReduceLROnPlateau(monitor="val_acc", factor=0.5, patience=2, min_delta=0.0)
    lrs = []
    for epoch, acc in enumerate([0.5, 0.6, 0.7, 0.65, 0.66], start=1):
        cb.on_evaluate(LoopState(epoch=epoch, metrics={"val_acc": acc}, optimizer=opt,
                                 run=events))
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5]  # rising accuracy never cut the LR
    assert [m for _, m, _ in events.items] == [
        "val_acc has not improved for 2 evaluations: learning rate 1 -> 0.5"]


def test_reduces_after_patience_then_waits_again() -> None:
    opt = _optimizer()
    cb = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.0)
    lrs = _lrs(cb, opt, [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert cb.reductions == 2


def test_cooldown_delays_counting() -> None:
    opt = _optimizer()
    cb = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_delta=0.0)
    # Keras semantics: the evaluation on which the cooldown reaches 0 already counts
    assert _lrs(cb, opt, [1.0] * 6) == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_min_lr_floor_and_every_group() -> None:
    opt = _optimizer(lr=1.0, groups=2)
    cb = ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.05, min_delta=0.0)
    events = Events()
    _lrs(cb, opt, [1.0, 1.0, 1.0, 1.0], run=events)
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.05]
    kinds = [k for k, _, _ in events.items]
    assert kinds == ["lr_reduced", "lr_reduced"]  # the third plateau has nothing left to cut
    assert "learning rate 1 -> 0.1, 2 -> 0.2" in events.items[0][1]


def test_min_delta_counts_tiny_gains_as_plateau() -> None:
    opt = _optimizer()
    cb = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.01)
    assert _lrs(cb, opt, [1.0, 0.995, 0.99])[-1] == 0.5


def test_state_survives_resume() -> None:
    opt = _optimizer()
    first = ReduceLROnPlateau(factor=0.5, patience=3, cooldown=1, min_delta=0.0)
    _lrs(first, opt, [1.0, 1.0, 1.0])
    resumed = ReduceLROnPlateau(factor=0.5, patience=3, cooldown=1, min_delta=0.0)
    resumed.load_state_dict(first.state_dict())
    assert resumed.wait == 2
    resumed.on_evaluate(LoopState(epoch=4, metrics={"val_loss": 1.0}, optimizer=opt))
    assert opt.param_groups[0]["lr"] == 0.5 and resumed.cooldown_counter == 1


@pytest.mark.parametrize("kwargs, error, match", [
    ({"factor": 1.0}, ValueError, r"factor must be a finite number in \(0, 1\) \(the LR is "
                                  r"multiplied by it\), got 1.0"),
    ({"factor": 0}, ValueError, r"factor must be a finite number in \(0, 1\)"),
    ({"factor": "0.5"}, TypeError, r"factor must be a finite number in \(0, 1\) .*, got str"),
    ({"patience": -2}, ValueError, "patience must be an int >= 0"),
    ({"cooldown": 1.5}, TypeError, r"cooldown must be an int \(evaluations to wait\), got float"),
    ({"min_lr": -1.0}, ValueError, "min_lr must be a finite number >= 0, got -1.0"),
    ({"mode": "up"}, ValueError, "mode must be one of 'min', 'max', 'auto'; got 'up'"),
])
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ReduceLROnPlateau(**kwargs)


def test_needs_the_metric_and_the_optimizer() -> None:
    cb = ReduceLROnPlateau(patience=0)
    with pytest.raises(KeyError, match="ReduceLROnPlateau monitors 'val_loss'"):
        cb.on_evaluate(LoopState(epoch=1, metrics={"loss": 1.0}))
    cb.on_evaluate(LoopState(epoch=1, metrics={"val_loss": 1.0}))
    with pytest.raises(ValueError, match="needs the optimizer"):
        cb.on_evaluate(LoopState(epoch=2, metrics={"val_loss": 1.0}))
