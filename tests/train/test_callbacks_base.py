"""Callback base: no-op hooks, the one stop signal, CallbackList dispatch and state."""

from __future__ import annotations

from typing import Any

import pytest

import loopwise
import loopwise.callbacks as public
from loopwise.train.callbacks import Callback, CallbackList, LoopState, StopRequest


class Counter(Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.n = 0

    def on_epoch_end(self, state: LoopState) -> None:
        self.calls.append(f"end{state.epoch}")
        self.n += 1

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n}

    def load_state_dict(self, state: Any) -> None:
        self.n = state["n"]


class Stopper(Callback):
    def on_evaluate(self, state: LoopState) -> None:
        if state.metrics.get("loss", 1.0) < 0.1:
            self.request_stop("loss below 0.1")


def test_public_names() -> None:
    assert public.EarlyStopping is loopwise.EarlyStopping
    assert public.ReduceLROnPlateau is loopwise.ReduceLROnPlateau
    assert {"Callback", "EarlyStopping", "ReduceLROnPlateau", "LearningRateMonitor",
            "TrendWatcher"} <= set(public.__all__)


def test_base_hooks_do_nothing_and_keep_no_state() -> None:
    cb = Callback()
    state = LoopState(epoch=1)
    for hook in ("on_train_begin", "on_epoch_begin", "on_evaluate", "on_epoch_end",
                 "on_train_end"):
        getattr(cb, hook)(state)
    assert cb.state_dict() == {} and cb.stop_request is None
    cb.load_state_dict({})
    with pytest.raises(ValueError, match="keeps no state but was given"):
        cb.load_state_dict({"x": 1})


def test_stop_signal_is_returned_by_dispatch() -> None:
    cbs = CallbackList([Counter(), Stopper()])
    assert cbs.dispatch("on_evaluate", LoopState(epoch=1, metrics={"loss": 0.5})) is None
    stop = cbs.dispatch("on_evaluate", LoopState(epoch=2, metrics={"loss": 0.05}))
    assert stop == StopRequest(source="Stopper", reason="loss below 0.1")


def test_request_stop_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="non-empty reason"):
        Callback().request_stop("")


def test_names_are_unique_and_state_round_trips() -> None:
    a, b = Counter(), Counter()
    cbs = CallbackList([a, b])
    assert cbs.names() == ["Counter", "Counter-2"] and len(cbs) == 2
    cbs.dispatch("on_epoch_end", LoopState(epoch=1))
    saved = cbs.state_dict()
    assert saved == {"Counter": {"n": 1}, "Counter-2": {"n": 1}}
    fresh = CallbackList([Counter(), Counter()])
    fresh.load_state_dict(saved)
    assert [cb.n for cb in fresh] == [1, 1]  # type: ignore[attr-defined]


def test_mismatched_callbacks_on_load_are_named() -> None:
    saved = CallbackList([Counter(), Stopper()]).state_dict()
    with pytest.raises(ValueError, match="saved state for Stopper which this run does not have"):
        CallbackList([Counter()]).load_state_dict(saved)
    with pytest.raises(ValueError, match="no saved state for Counter-2"):
        CallbackList([Counter(), Stopper(), Counter()]).load_state_dict(saved)


def test_bad_callbacks_and_hooks() -> None:
    with pytest.raises(TypeError, match=r"callbacks\[1\] is a str, not a loopwise Callback"):
        CallbackList([Counter(), "early"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown callback hook 'on_step'"):
        CallbackList([]).dispatch("on_step", LoopState())
    assert CallbackList(Counter()).names() == ["Counter"]  # a single callback is accepted
