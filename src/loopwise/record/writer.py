"""The writer a :class:`~loopwise.record.run.Run` holds: everything that goes into the run
folder (the store, the JSON log, ``run.json``, ``config.json``), its heartbeat, the record's
position (the global step and the epochs ended) and the end of the record (helpers stopped,
exporters drained and closed, the store flushed, the final status written).

``Run`` is the user's object (construction, the step API, helpers, exporters) and delegates
every write to its one ``RunWriter``; nothing else writes a run folder's record files."""

from __future__ import annotations

import atexit
import contextlib
import json
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loopwise.record.epochs import EpochLedger
from loopwise.record.folder import CONFIG_FILE, LOG_FILE, STORE_FILE
from loopwise.record.jsonlog import JsonLog
from loopwise.record.live import LiveRuns
from loopwise.record.lock import RunLock
from loopwise.record.media import ImageBudget
from loopwise.record.mirror import Mirrors
from loopwise.record.recorder import ColumnData
from loopwise.record.run_media import RunMedia
from loopwise.record.runfile import RunFile
from loopwise.record.status import exit_status
from loopwise.record.store import Batch, StoreWriter
from loopwise.utils.atomic import atomic_write_json
from loopwise.utils.isotime import iso
from loopwise.utils.validate import (
    check_count,
    check_json,
    check_key,
    check_number,
    check_optional_int,
    check_step,
    check_wall_time,
)

LEVELS = ("debug", "info", "warning", "error")


class RunWriter:
    """Writes one run folder's record; see the module docstring. Made by ``Run.__init__``."""

    def __init__(self, path: Path, file: RunFile, *, flush_interval: float,
                 heartbeat_interval: float, clock: Callable[[], float],
                 lock: RunLock | None, image_budget: ImageBudget | None = None) -> None:
        info = file.snapshot()
        self.path = path
        self._file = file
        self._writer_lock = lock  # released by close()
        self._clock = clock
        self._heartbeat_interval = heartbeat_interval
        self._last_heartbeat = clock()
        self._info_due = False  # run.json's step and epoch to be refreshed at the next tick
        self._closers: list[Callable[[], None]] = []
        self._close_lock = threading.Lock()
        self._closed = False
        self.global_step = int(info.get("global_step", 0))
        self.epochs = EpochLedger(int(info.get("epoch", 0)))
        self.mirrors = Mirrors(self._exporter_failed, path)
        self._file.update()
        try:
            self._store = StoreWriter(path / STORE_FILE, flush_interval=flush_interval,
                                      on_tick=self._tick, on_batch=self._export,
                                      on_error=self._fail, clock=clock)
        except BaseException as exc:
            self._fail(exc)
            raise
        try:
            self._jsonlog = JsonLog(path / LOG_FILE, clock=clock)
        except BaseException as exc:
            self._fail(exc)
            self._store.close()
            raise
        self.media = RunMedia(path, self._store, clock=clock,
                              budget=ImageBudget() if image_budget is None else image_budget,
                              step=lambda: self.global_step, closed=self._media_closed,
                              report=self._warn)
        atexit.register(self._atexit)
        LiveRuns.add(path, self)  # a reader in this process catches up first (record/live.py)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def store(self) -> StoreWriter:
        return self._store

    @property
    def jsonlog(self) -> JsonLog:
        return self._jsonlog

    def _media_closed(self) -> RuntimeError | None:
        return self._closed_error("nothing more can be logged to it") if self._closed else None

    def _warn(self, kind: str, message: str, data: Mapping[str, Any]) -> None:
        self.log_event(kind, message, level="warning", data=data)

    def _closed_error(self, what: str) -> RuntimeError:
        return RuntimeError(f"run {self._file.get('name')!r} is closed; {what}")

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
        check_step(step)
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of name to number, got "
                            f"{type(values).__name__}")
        now = self._clock() if wall_time is None else check_wall_time(wall_time)
        clean: dict[str, float] = {}
        for key, value in values.items():
            check_key(key)  # every key, also a float's: '' or 5 is no series name
            if type(value) is not float:
                value = check_number(value, what=f"value of {key!r}")
            clean[key] = value
        self._store.add_scalars(step, now, clean)

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
        epoch = check_count(epoch, what="epoch")
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of name to number, got "
                            f"{type(values).__name__}")
        step = check_optional_int(step, what="step", minimum=0)
        clean = {check_key(k): check_number(v, what=f"value of {k!r}") for k, v in values.items()}
        at = (self.global_step or epoch) if step is None else step
        row = self.epochs.row(epoch, at, clean)  # one point per epoch and name, across resumes
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
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of name to number, got "
                            f"{type(values).__name__}")
        now = self._clock() if wall_time is None else check_wall_time(wall_time)
        clean = {check_key(k): check_number(v, what=f"system value {k!r}")
                 for k, v in values.items()}
        self._store.add_system(now, clean)

    def set_config(self, config: Mapping[str, Any]) -> None:
        """Write ``config.json`` atomically; a value JSON cannot hold is refused by key."""
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be a mapping (dict), got {type(config).__name__}")
        check_json(config, what="config")
        atomic_write_json(self.path / CONFIG_FILE, dict(config))
        self.mirrors.set_config(config)

    def set_info(self, **fields: Any) -> None:
        """Add JSON fields to ``run.json`` (e.g. a model summary line); core fields are refused."""
        for key in fields:
            if key in ("id", "name", "status", "start_time", "end_time", "heartbeat", "pid"):
                raise ValueError(f"run.json field {key!r} is managed by loopwise")
        check_json(fields, what="run info")
        self._file.update(**fields)

    def flush(self, *, wait: bool = True) -> None:
        """Block until everything logged so far is in the store. ``run.json``'s step and epoch
        follow from the store's thread within ``flush_interval`` (its fsyncs, ~10 ms on a slow
        disk, stay off the caller's thread: a pass end is not slowed by them).

        ``wait=False`` only asks for it: the store's thread writes what is queued, and
        ``run.json``'s step and epoch, at its next tick (within ``flush_interval``), so that
        the caller's thread does none of the SQLite work (a pass end every 100 steps)."""
        if not wait:
            if self._store.error is not None:
                self._store.flush()  # raises the writer's error to the caller
            self._info_due = True
            return
        self.media.flush()
        self._store.flush()
        self._info_due = True

    def catch_up(self) -> None:
        """Write what is queued for the store now, for a reader in this process
        (``record/live.py``); nothing on the store's own threads (it is writing already), on a
        closed run or after a write error (the reader sees what was committed)."""
        store = self._store
        if self._closed or store.error is not None or store.on_own_thread():
            return
        self.flush()

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the run closes (last registered, first called)."""
        if not callable(callback):
            raise TypeError("on_close needs a callable taking no arguments")
        self._closers.append(callback)

    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        """Stop helpers, flush the store and write the final status. Idempotent."""
        if status not in ("finished", "failed", "interrupted"):
            raise ValueError(
                f"a run closes as 'finished', 'failed' or 'interrupted'; got {status!r}"
            )
        with self._close_lock:
            if self._closed:
                return
            closer_errors: list[str] = []
            while self._closers:
                closer = self._closers.pop()
                try:
                    closer()
                except Exception as exc:  # one bad helper must not lose the record
                    closer_errors.append(f"{closer!r}: {exc}")
                    if self._store.error is None:
                        self._store.add_event(self._clock(), "error", "close_error",
                                              f"a close hook failed: {exc}", None)
            try:
                self.media.close()  # its last histograms and images go to the store
            except Exception as exc:
                closer_errors.append(f"media: {exc}")
                if self._store.error is None:
                    self._store.add_event(self._clock(), "error", "close_error",
                                          f"the media thread failed: {exc}", None)
            if self._file.failure is not None:
                status = "failed"
                error = error if error is not None else str(self._file.failure)
            if error is not None and self._store.error is None:
                last_line = error.strip().splitlines()[-1] if error.strip() else "error"
                self._store.add_event(self._clock(), "error", "exception", last_line,
                                      json.dumps({"traceback": error}))
            if any(True for _ in self.mirrors):
                self._close_exporters(status, error)
            self._closed = True
            LiveRuns.remove(self.path)
            try:
                self._store.close()
            except BaseException as exc:
                self._file.fail(exc)
                raise
            finally:
                self._finish(status, error)

    def _finish(self, status: str, error: str | None) -> None:
        """The last lines of :meth:`close`: exception and close events, the final ``run.json``,
        the exporters. After a write failure the run is ``failed`` with that error, and these
        writes are best effort (the disk may still be full)."""
        if self._file.failure is not None:
            status = "failed"
            error = error if error is not None else str(self._file.failure)
        if error is not None:
            last_line = error.strip().splitlines()[-1] if error.strip() else "error"
            with contextlib.suppress(OSError):
                self._jsonlog.event("exception", last_line, level="error",
                                    data={"traceback": error})
        try:
            self._jsonlog.event("closed", f"run closed as {status}", data={
                "status": status, "global_step": self.global_step})
            self._jsonlog.close()
        except OSError as exc:
            self._file.fail(exc)
            with contextlib.suppress(OSError):
                self._jsonlog.close()
        now = self._clock()
        fields: dict[str, Any] = dict(status=status, end_time=now, heartbeat=now,
                                      ended_at=iso(now), global_step=self.global_step,
                                      epoch=self.epochs.epoch)
        if error is not None:
            fields["error"] = error
        try:
            self._file.update(**fields)
        except OSError:
            if self._file.failure is None:
                raise
        atexit.unregister(self._atexit)
        if self._writer_lock is not None:
            self._writer_lock.release()

    def _close_exporters(self, status: str, error: str | None) -> None:
        """Hand the exporters the last rows and close them while the store is still open, so
        that what they say at close (what they could not deliver) lands in the record."""
        with contextlib.suppress(RuntimeError, OSError):  # a failed store: close() raises it
            self._store.flush()
        self.mirrors.close(status, error)

    def _atexit(self) -> None:
        exc = getattr(sys, "last_value", None)  # set when the process dies of an exception
        status, error = exit_status(None if exc is None else type(exc), exc,
                                    None if exc is None else exc.__traceback__)
        if not self.path.is_dir():  # the folder was removed while the run was open
            name = self._file.get("name")
            print(f"loopwise: run {name!r} was not closed and its folder {self.path} is "
                  f"gone; nothing more was recorded", file=sys.stderr)
            return
        self.close(status, error=error)

    # -- the store's thread --------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        self._file.fail(exc)

    def _tick(self) -> None:
        now = self._clock()
        if ((self._info_due or now - self._last_heartbeat >= self._heartbeat_interval)
                and not self._closed):
            self._last_heartbeat, self._info_due = now, False
            self._file.update(heartbeat=now, global_step=self.global_step,
                              epoch=self.epochs.epoch)

    def _export(self, batch: Batch) -> None:
        self.mirrors.deliver(batch)

    def _exporter_failed(self, name: str, exc: BaseException) -> None:
        self._store.add_event(self._clock(), "error", "exporter_error",
                              f"exporter {name} failed: {exc}", None)
