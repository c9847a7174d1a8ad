"""What a :class:`~loopwise.record.run.Run` takes: scalars, columns, events, epoch summaries,
system samples, config and info (its base class; the run's state is set in ``run.py``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loopwise.record.epochs import EpochLedger
from loopwise.record.folder import CONFIG_FILE
from loopwise.record.jsonlog import JsonLog
from loopwise.record.lock import RunLock
from loopwise.record.mirror import Mirrors
from loopwise.record.recorder import ColumnData
from loopwise.record.runfile import RunFile
from loopwise.record.store import StoreWriter
from loopwise.utils.atomic import atomic_write_json
from loopwise.utils.validate import check_json, check_key, check_number

LEVELS = ("debug", "info", "warning", "error")


class RunState:
    """The state a run's methods share (set by ``Run.__init__``)."""

    path: Path
    _file: RunFile
    _store: StoreWriter
    _jsonlog: JsonLog
    _clock: Callable[[], float]
    _closed: bool
    _closers: list[Callable[[], None]]
    _close_lock: threading.Lock
    _writer_lock: RunLock | None
    _global_step: int
    _epochs: EpochLedger
    _info_due: bool
    _mirrors: Mirrors

    def _closed_error(self, what: str) -> RuntimeError:
        return RuntimeError(f"run {self._file.get('name')!r} is closed; {what}")


class RunLogging(RunState):
    """The logging methods of :class:`~loopwise.record.run.Run`."""

    def log_scalar(self, key: str, value: float, *, step: int,
                   wall_time: float | None = None) -> None:
        """Record one value of the series ``key`` at ``step``."""
        check_key(key)
        self.log_scalars({key: value}, step=step, wall_time=wall_time)

    def log_scalars(self, values: Mapping[str, float], *, step: int,
                    wall_time: float | None = None) -> None:
        """Record several series at one ``step``. Values must be real numbers (NaN/inf kept)."""
        if self._closed:
            raise self._closed_error("nothing more can be logged to it")
        if type(step) is not int:
            raise TypeError(f"step must be an int, got {type(step).__name__}")
        clean: dict[str, float] = {}
        for key, value in values.items():
            check_key(key)  # every key, also a float's: '' or 5 is no series name
            if type(value) is not float:
                value = check_number(value, what=f"value of {key!r}")
            clean[key] = value
        self._store.add_scalars(step, self._clock() if wall_time is None else wall_time, clean)

    def log_columns(self, columns: Mapping[str, ColumnData]) -> None:
        """Queue ``{key: (steps, wall_times, values)}`` columns of floats (the loop-side
        accumulator's hand-over: keys and values were checked when they were logged)."""
        if self._closed:
            raise self._closed_error("nothing more can be logged to it")
        self._store.add_columns(columns)

    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Mapping[str, Any] | None = None) -> None:
        """Record an event (``level`` is one of debug, info, warning, error)."""
        if self._closed:
            raise self._closed_error(f"cannot log event {kind!r}")
        check_key(kind, what="event kind")
        if not isinstance(message, str):
            raise TypeError(f"event message must be a string, got {type(message).__name__}")
        if level not in LEVELS:
            raise ValueError(f"event level must be one of {', '.join(LEVELS)}; got {level!r}")
        data_json = None
        if data is not None:
            check_json(data, what="event data")
            data_json = json.dumps(data, allow_nan=False)
        now = self._clock()
        self._store.add_event(now, level, kind, message, data_json)
        try:
            self._jsonlog.event(kind, message, level=level, data=data, time=now)
        except OSError as exc:
            self._file.fail(exc)
            raise

    def log_epoch(self, epoch: int, values: Mapping[str, float], *,
                  step: int | None = None) -> None:
        """Record an epoch's summary at the global ``step`` where the epoch ended (default
        ``global_step``; on a run whose step never advanced, ``epoch``, so that every epoch
        keeps its own point): series ``epoch/<name>`` plus the ``epoch`` series (value ``epoch``)
        that gives every point of the run its epoch, and one ``metrics`` line in the JSON log.

        The prefix keeps an epoch mean (``epoch/loss``) apart from the per-step series
        (``loss``). See ``docs/record.md``.
        """
        if type(epoch) is not int or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of name to number, got "
                            f"{type(values).__name__}")
        if step is not None and (type(step) is not int or step < 0):
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        clean = {check_key(k): check_number(v, what=f"value of {k!r}") for k, v in values.items()}
        at = (self._global_step or epoch) if step is None else step
        row = self._epochs.row(epoch, at, clean)  # one point per epoch and name, across resumes
        if not row:
            return
        clean = {k: v for k, v in clean.items() if f"epoch/{k}" in row}
        self.log_scalars(row, step=at)
        try:
            self._jsonlog.metrics(clean, step=at, epoch=epoch, time=self._clock())
        except OSError as exc:
            self._file.fail(exc)
            raise

    def log_system(self, values: Mapping[str, float], *, wall_time: float | None = None) -> None:
        """Record one system sample (name -> value)."""
        if self._closed:
            raise self._closed_error("cannot log a system sample")
        clean = {check_key(k): check_number(v, what=f"system value {k!r}")
                 for k, v in values.items()}
        self._store.add_system(self._clock() if wall_time is None else wall_time, clean)

    def set_config(self, config: Mapping[str, Any]) -> None:
        """Write ``config.json`` atomically; a value JSON cannot hold is refused by key."""
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be a mapping (dict), got {type(config).__name__}")
        check_json(config, what="config")
        atomic_write_json(self.path / CONFIG_FILE, dict(config))
        self._mirrors.set_config(config)

    def set_info(self, **fields: Any) -> None:
        """Add JSON fields to ``run.json`` (e.g. a model summary line); core fields are refused."""
        for key in fields:
            if key in ("id", "name", "status", "start_time", "end_time", "heartbeat", "pid"):
                raise ValueError(f"run.json field {key!r} is managed by loopwise")
        check_json(fields, what="run info")
        self._file.update(**fields)

    def flush(self) -> None:
        """Block until everything logged so far is in the store. ``run.json``'s step and epoch
        follow from the store's thread within ``flush_interval`` (its fsyncs, ~10 ms on a slow
        disk, stay off the caller's thread: a pass end is not slowed by them)."""
        self._store.flush()
        self._info_due = True

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the run closes (last registered, first called)."""
        if not callable(callback):
            raise TypeError("on_close needs a callable taking no arguments")
        self._closers.append(callback)
