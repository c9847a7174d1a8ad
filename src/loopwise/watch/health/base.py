"""The pieces every health detector shares: the :class:`Finding`, the :class:`Detector` protocol,
the per-key bookkeeping of :class:`KeyedDetector`, and argument checks.

A detector is a small, pure state machine. It is fed observations ``update(step, values,
time=...)`` (``values`` maps a series name to a float) and returns the findings that *start* an
episode: a condition that was not present at the previous observation. While the condition
persists the detector stays quiet; once it clears, a later recurrence is a new episode. So one
planted problem gives exactly one finding, which a runner turns into one record event and one
console warning. Detectors never print, never touch a run, and read no clock: the runner does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Protocol, runtime_checkable

from loopwise.utils.jsonsafe import json_safe
from loopwise.utils.validate import check_int, is_key

LEVELS = ("debug", "info", "warning", "error")
STREAMS = ("step", "epoch", "system")
EVENT_PREFIX = "health."
Column = Any  # a column of steps, times or values: a sequence of numbers or a numpy array


@dataclass(frozen=True)
class Finding:
    """One detected problem: what fired, on which series, at which step, and why."""

    detector: str
    key: str
    step: int
    message: str
    level: str = "warning"
    data: Mapping[str, Any] = field(default_factory=dict)
    time: float | None = None

    @property
    def kind(self) -> str:
        """The record event kind, ``health.<detector>``."""
        return EVENT_PREFIX + self.detector

    def event_data(self) -> dict[str, Any]:
        """``data`` plus key and step, made JSON-safe (non-finite floats become ``null``)."""
        out: dict[str, Any] = {"key": self.key, "step": self.step}
        out.update(self.data)
        safe: dict[str, Any] = json_safe(out)
        return safe


@runtime_checkable
class Detector(Protocol):
    """What a runner needs from a detector."""

    name: str
    streams: frozenset[str]

    def update(self, step: int, values: Mapping[str, float], *,
               time: float | None = None) -> list[Finding]: ...

    def reset(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


# -- argument checks ---------------------------------------------------------------------------
def check_positive_int(value: object, *, what: str) -> int:
    """An int >= 1: the one int check (:func:`~loopwise.utils.validate.check_int`)."""
    return check_int(value, what=what, minimum=1)


def check_level(level: object) -> str:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}; got {level!r}")
    return str(level)


def check_unit(unit: object) -> str:
    if not isinstance(unit, str) or not unit.strip():
        raise ValueError(f"unit must be a word for the messages, like 'epochs'; got {unit!r}")
    return unit


def check_streams(streams: Iterable[str] | str, *, what: str = "streams") -> frozenset[str]:
    items = (streams,) if isinstance(streams, str) else tuple(streams)
    bad = [s for s in items if s not in STREAMS]
    if bad or not items:
        raise ValueError(f"{what} must name one or more of {', '.join(STREAMS)}; got {streams!r}")
    return frozenset(items)


def check_keys(keys: str | Sequence[str], *, what: str = "keys") -> tuple[str, ...]:
    """One name or glob pattern (``"*loss"``), or a sequence of them."""
    items = (keys,) if isinstance(keys, str) else tuple(keys)
    if not items or not all(is_key(k) for k in items):
        raise ValueError(
            f"{what} must be a metric name or glob pattern (like 'val_loss' or '*loss'), "
            f"or a list of them; got {keys!r}"
        )
    return items


def worse(previous: float, value: float, *, mode: str, min_delta: float) -> bool:
    """True when ``value`` is worse than ``previous`` by more than ``min_delta``.

    This compares with the *previous* value (a trend), not with the best so far: "is this an
    improvement?" lives in :mod:`loopwise.watch.improvement`.
    """
    if mode == "min":
        return value > previous + min_delta
    return value < previous - min_delta


# -- per-key bookkeeping -----------------------------------------------------------------------
class KeyedDetector:
    """Base of the detectors that watch every series whose name matches ``keys``.

    Subclasses implement :meth:`_new_state`, :meth:`_check` and the (de)serialisation of one
    key's state. ``_check`` returns a finding while the condition holds and None while it does
    not; this base turns that into episodes (one finding when the condition appears).
    """

    name = "keyed"

    def __init__(self, keys: str | Sequence[str], *, streams: Iterable[str] | str,
                 level: str = "warning") -> None:
        self.keys = check_keys(keys)
        self.streams = check_streams(streams)
        self.level = check_level(level)
        self._matches: dict[str, bool] = {}
        self._states: dict[str, dict[str, Any]] = {}
        self._active: set[str] = set()

    def matches(self, key: str) -> bool:
        hit = self._matches.get(key)
        if hit is None:
            hit = any(fnmatchcase(key, pattern) for pattern in self.keys)
            self._matches[key] = hit
        return hit

    @property
    def active(self) -> frozenset[str]:
        """The keys whose problem is currently present (an episode in progress)."""
        return frozenset(self._active)

    def update(self, step: int, values: Mapping[str, float], *,
               time: float | None = None) -> list[Finding]:
        found: list[Finding] = []
        for key, value in values.items():
            if not self.matches(key):
                continue
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = self._new_state(key)
            finding = self._check(key, state, step, float(value))
            if finding is None:
                self._active.discard(key)
            elif key not in self._active:
                self._active.add(key)
                found.append(finding if time is None else _with_time(finding, time))
        return found

    def update_column(self, key: str, steps: Column, values: Column, *,
                      times: Column | None = None) -> list[tuple[int, Finding]]:
        """A whole column of one key at once: the findings, as ``(index, finding)``, and the
        state afterwards are those of ``update(steps[i], {key: values[i]}, time=times[i])``
        called for each ``i`` in order (``loopwise doctor`` replays a finished run this way;
        the live runner feeds one point at a time). ``values`` may be a numpy array."""
        if not self.matches(key) or len(values) == 0:
            return []
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = self._new_state(key)
        found, active = self._check_column(key, state, steps, values, key in self._active)
        if active:
            self._active.add(key)
        else:
            self._active.discard(key)
        if times is None:
            return found
        return [(i, _with_time(f, float(times[i]))) for i, f in found]

    def reset(self) -> None:
        self._states.clear()
        self._active.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name,
                "states": {k: self._dump_state(v) for k, v in self._states.items()},
                "active": sorted(self._active)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("name") != self.name or "states" not in state:
            raise ValueError(
                f"this is not the state of a {self.name!r} detector "
                f"(got name {state.get('name')!r}); load the states in the order they were saved"
            )
        self._states = {str(k): self._load_state(str(k), v) for k, v in state["states"].items()}
        self._active = set(state.get("active", ()))

    # -- for subclasses ----------------------------------------------------------------------
    def _new_state(self, key: str) -> dict[str, Any]:
        return {}

    def _dump_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in state.items()}

    def _load_state(self, key: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        return dict(raw)

    def _check(self, key: str, state: dict[str, Any], step: int,
               value: float) -> Finding | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_column(self, key: str, state: dict[str, Any], steps: Column, values: Column,
                      active: bool) -> tuple[list[tuple[int, Finding]], bool]:
        """``_check`` over a column: the findings that start an episode (with their index)
        and whether an episode is in progress after the last value (``active``: before the
        first). This one calls ``_check`` per value (the same results by construction);
        detectors override it with numpy where they can give the same findings."""
        starts: list[tuple[int, Finding]] = []
        check = self._check
        plain_steps = steps.tolist() if hasattr(steps, "tolist") else steps
        plain_values = values.tolist() if hasattr(values, "tolist") else values
        for i, (step, value) in enumerate(zip(plain_steps, plain_values, strict=True)):
            finding = check(key, state, int(step), float(value))
            if finding is None:
                active = False
            elif not active:
                active = True
                starts.append((i, finding))
        return starts, active

    def _finding(self, key: str, step: int, message: str, **data: Any) -> Finding:
        return Finding(self.name, key, step, message, self.level, data)


def episode_starts(holds: Any, where: Any, size: int,
                   active: bool) -> tuple[list[tuple[int, int]], bool]:
    """Where episodes start in a column of ``size`` values, for a ``_check_column``:
    ``holds[j]`` says whether the condition holds at the value at index ``where[j]`` (a value
    left out, skipped by the detector, ends an episode as ``_check`` returning None does);
    ``active``: whether an episode was in progress before the column. Returns the starts as
    ``(index in the column, j)`` and whether an episode is in progress after the last value."""
    import numpy as np

    if not size:
        return [], active
    fired = np.zeros(size, dtype=bool)
    fired[where] = holds
    before = np.empty_like(fired)  # the condition at the previous value
    before[0] = active
    before[1:] = fired[:-1]
    at = np.full(size, -1)
    at[where] = np.arange(len(where))
    starts = np.flatnonzero(fired & ~before)
    return list(zip(starts.tolist(), at[starts].tolist(), strict=True)), bool(fired[-1])


def _with_time(finding: Finding, time: float) -> Finding:
    return Finding(finding.detector, finding.key, finding.step, finding.message, finding.level,
                   finding.data, time)


def fmt(value: float) -> str:
    """A short number for messages."""
    return f"{value:.4g}"
