"""EarlyStopping against known metric sequences, restore_best_weights, resume, bad input."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from loopwise.train.callbacks import EarlyStopping, LoopState


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Any = None) -> None:
        self.items.append((kind, message))


def _feed(cb: EarlyStopping, values: list[float], *, model: Any = None,
          run: Any = None, start: int = 1) -> int | None:
    """Evaluate epoch by epoch; return the epoch at which a stop was requested."""
    for epoch, value in enumerate(values, start=start):
        cb.on_evaluate(LoopState(epoch=epoch, metrics={"val_loss": value}, model=model,
                                 run=run))
        if cb.stop_request is not None:
            return epoch
    return None


def test_stops_after_patience_evaluations_without_improvement() -> None:
    cb = EarlyStopping(patience=3)
    assert _feed(cb, [1.0, 0.8, 0.9, 0.85, 0.81, 0.7]) == 5
    assert cb.best == 0.8 and cb.stopped_epoch == 5
    assert cb.stop_request is not None
    assert cb.stop_request.reason == ("val_loss has not improved for 3 evaluations "
                                      "(best 0.8 at epoch 2)")


def test_min_delta_and_max_mode() -> None:
    cb = EarlyStopping(monitor="val_acc", patience=2, min_delta=0.05, mode="max")
    for epoch, acc in enumerate([0.5, 0.52, 0.54, 0.6], start=1):  # +0.02, +0.04 are too small
        cb.on_evaluate(LoopState(epoch=epoch, metrics={"val_acc": acc}))
        if cb.stop_request:
            break
    assert cb.stopped_epoch == 3 and cb.best == 0.5


def test_accuracy_is_maximised_by_default() -> None:
    # mode="auto": val_acc rising is an improvement (it used to be minimised: stop at epoch 3)
    cb = EarlyStopping(monitor="val_acc", patience=2)
    accs = [0.5, 0.6, 0.7, 0.8, 0.75, 0.79]
    stopped = None
    for epoch, acc in enumerate(accs, start=1):
        cb.on_evaluate(LoopState(epoch=epoch, metrics={"val_acc": acc}))
        if cb.stop_request is not None:
            stopped = epoch
            break
    assert stopped == 6 and cb.best == 0.8
    assert cb.stop_request is not None
    assert cb.stop_request.reason == ("val_acc has not improved for 2 evaluations "
                                      "(best 0.8 at epoch 4)")
    assert EarlyStopping(monitor="val_acc", mode="min").improvement.mode == "min"


def test_patience_zero_stops_at_the_first_non_improvement() -> None:
    assert _feed(EarlyStopping(patience=0), [1.0, 0.9, 0.95]) == 3


def test_nan_counts_as_no_improvement() -> None:
    assert _feed(EarlyStopping(patience=2), [1.0, float("nan"), float("nan")]) == 3


def test_improving_sequence_never_stops() -> None:
    assert _feed(EarlyStopping(patience=1), [5.0, 4.0, 3.0, 2.0, 1.0]) is None


def test_restore_best_weights_and_event() -> None:
    model = torch.nn.Linear(2, 1)
    cb = EarlyStopping(patience=1, restore_best_weights=True)
    events = Events()
    cb.on_evaluate(LoopState(epoch=1, metrics={"val_loss": 0.5}, model=model, run=events))
    best = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    cb.on_evaluate(LoopState(epoch=2, metrics={"val_loss": 0.9}, model=model, run=events))
    assert torch.equal(model.weight, best)
    assert events.items[0][0] == "early_stopping"
    assert "restored the best weights" in events.items[0][1]


def test_state_survives_resume() -> None:
    model = torch.nn.Linear(2, 1)
    first = EarlyStopping(patience=3, restore_best_weights=True)
    _feed(first, [1.0, 0.5, 0.7], model=model)
    saved = first.state_dict()
    resumed = EarlyStopping(patience=3, restore_best_weights=True)
    resumed.load_state_dict(saved)
    assert resumed.wait == 1 and resumed.best == 0.5
    assert _feed(resumed, [0.6, 0.8], model=model, start=4) == 5
    assert resumed.best_weights is not None


def test_missing_metric_names_what_is_there() -> None:
    cb = EarlyStopping(monitor="val_loss")
    with pytest.raises(KeyError, match=r"monitors 'val_loss', which is not among this epoch's "
                                       r"metrics \(train_loss, val_acc\)"):
        cb.on_evaluate(LoopState(epoch=1, metrics={"train_loss": 1.0, "val_acc": 0.5}))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"patience": -1}, ValueError, "patience must be an int >= 0"),
    ({"mode": "lower"}, ValueError, "mode must be one of 'min', 'max', 'auto'; got 'lower'"),
    ({"min_delta": -0.1}, ValueError, "min_delta must be a finite number >= 0"),
    ({"monitor": ""}, ValueError, "monitor must be a metric name"),
])
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        EarlyStopping(**kwargs)


def test_state_of_another_monitor_is_refused() -> None:
    saved = EarlyStopping(monitor="val_acc", mode="max").state_dict()
    with pytest.raises(ValueError, match="pass monitor='val_acc' to resume"):
        EarlyStopping().load_state_dict(saved)
    with pytest.raises(KeyError, match="EarlyStopping state is missing 'wait'"):
        EarlyStopping().load_state_dict({"monitor": "val_loss", "improvement": {}})
