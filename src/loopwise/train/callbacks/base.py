"""The callback protocol: no-op hooks, state for resume, and one explicit stop signal.

A callback never reaches into the trainer to stop it. It calls ``self.request_stop(reason)``;
the loop that dispatched the hook (Workflow, fit) reads the request from
``CallbackList.dispatch()`` and stops after the current epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from loopwise.record.recorder import TrainingRun

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_evaluate")


@dataclass(frozen=True)
class StopRequest:
    """The signal a callback gives to end training: who asked, and why."""

    source: str
    reason: str


@dataclass
class LoopState:
    """What hooks see. ``epoch`` counts from 1 (0 before the first epoch); ``metrics`` holds the
    current epoch's training and evaluation metrics; ``run`` (a ``loopwise.record.Run`` or None)
    receives events and scalars; ``model`` and ``optimizer`` are the trainer's."""

    epoch: int = 0
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    model: Any = None
    optimizer: Any = None
    run: TrainingRun | None = None


class Callback:
    """Base class: every hook does nothing; subclasses override what they need.

    Hooks: ``on_train_begin``, ``on_epoch_begin``, ``on_evaluate`` (after evaluation, with the
    epoch's metrics), ``on_epoch_end``, ``on_train_end``. Stateful callbacks override
    ``state_dict()``/``load_state_dict()`` so that a resumed run continues where it stopped.
    """

    stop_request: StopRequest | None = None

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop training after the current epoch."""
        if not isinstance(reason, str) or not reason:
            raise ValueError("request_stop needs a non-empty reason, e.g. 'val_loss stalled'")
        self.stop_request = StopRequest(source=type(self).__name__, reason=reason)

    def on_train_begin(self, state: LoopState) -> None:
        """Called once before the first epoch of this process (also after a resume)."""

    def on_train_end(self, state: LoopState) -> None:
        """Called once after the last epoch (or after a stop request)."""

    def on_epoch_begin(self, state: LoopState) -> None:
        """Called before each epoch's training."""

    def on_epoch_end(self, state: LoopState) -> None:
        """Called after each epoch, once its metrics are recorded."""

    def on_evaluate(self, state: LoopState) -> None:
        """Called after each evaluation; ``state.metrics`` holds the epoch's metrics."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state but was given {sorted(state)}")


def monitored_value(owner: str, monitor: str, metrics: Mapping[str, float]) -> float:
    """The monitored metric, or a KeyError that names what is there instead."""
    if monitor not in metrics:
        have = ", ".join(sorted(metrics)) or "none"
        raise KeyError(
            f"{owner} monitors {monitor!r}, which is not among this epoch's metrics ({have}); "
            f"return it from evaluate() or train_loop(), or pass monitor= one of those"
        )
    return float(metrics[monitor])


def require_keys(owner: str, state: Mapping[str, Any], keys: Iterable[str]) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise KeyError(f"{owner} state is missing {', '.join(map(repr, missing))}; "
                       "was it saved by this version of loopwise?")


class CallbackList:
    """An ordered set of callbacks with unique names, dispatching hooks and collecting state."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        if isinstance(callbacks, Callback):
            callbacks = (callbacks,)
        items = list(callbacks)
        for i, cb in enumerate(items):
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks[{i}] is a {type(cb).__name__}, not a loopwise Callback; "
                    "subclass loopwise.callbacks.Callback"
                )
        self._items: dict[str, Callback] = {}
        counts: dict[str, int] = {}
        for cb in items:
            base = type(cb).__name__
            counts[base] = counts.get(base, 0) + 1
            self._items[base if counts[base] == 1 else f"{base}-{counts[base]}"] = cb

    def __iter__(self) -> Iterator[Callback]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return list(self._items)

    def dispatch(self, hook: str, state: LoopState) -> StopRequest | None:
        """Call ``hook`` on every callback in order; return the first stop request, if any."""
        if hook not in HOOKS:
            raise ValueError(f"unknown callback hook {hook!r}; hooks are {', '.join(HOOKS)}")
        first: StopRequest | None = None
        for cb in self._items.values():
            getattr(cb, hook)(state)
            if first is None and cb.stop_request is not None:
                first = cb.stop_request
        return first

    def state_dict(self) -> dict[str, dict[str, Any]]:
        return {name: cb.state_dict() for name, cb in self._items.items()}

    def load_state_dict(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Restore every callback; a callback without saved state (or saved state without a
        callback), or callbacks in another order, is an error naming it: a resumed run must
        not silently differ."""
        self.check_state(states)
        for name, cb in self._items.items():
            cb.load_state_dict(states[name])

    def check_state(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """ValueError unless ``states`` holds state for exactly these callbacks, in this order
        (hooks run in order: a reversed list is another run)."""
        if not isinstance(states, Mapping):
            raise ValueError(f"the saved callback states are a {type(states).__name__}, "
                             "not a dict")
        missing = [n for n in self._items if n not in states]
        extra = [n for n in states if n not in self._items]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"no saved state for {', '.join(missing)}")
            if extra:
                parts.append(f"saved state for {', '.join(extra)} which this run does not have")
            raise ValueError(
                "the callbacks differ from the checkpoint's: " + "; ".join(parts)
                + ". Pass the same callbacks as the run that wrote the checkpoint"
            )
        if list(states) != list(self._items):
            raise ValueError(
                f"the callbacks are in another order than the checkpoint's: saved "
                f"{', '.join(states)}; given {', '.join(self._items)}. Pass them in the saved "
                "order (hooks run in order)"
            )
