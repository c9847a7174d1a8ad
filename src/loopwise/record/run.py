"""A run: one folder holding ``run.json``, ``config.json`` and the embedded store.

``Run.create()`` makes a new folder (never shared: the folder is created exclusively);
``Run.reopen()`` continues an existing one (a resumed experiment). The writer thread of the
store refreshes the heartbeat in ``run.json`` every ``heartbeat_interval`` seconds; a reader
that finds ``running`` with a dead writer reports ``crashed``.

A run left open when the interpreter exits is closed by an ``atexit`` hook: ``failed`` (with the
traceback) when the process is dying of an uncaught exception, ``interrupted`` for Ctrl-C,
``finished`` otherwise.

A write that fails for want of space (the store, the JSON log or ``run.json``) raises one
:class:`~loopwise.record.errors.DiskFullError` ("no space left on the device holding ...") to
the caller's next log/flush; the run is marked ``failed`` with that error (best effort: when not
even ``run.json`` can be written, readers see the dead writer as ``crashed``); everything
committed before stays readable.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from loopwise.record.atomic import atomic_write_json
from loopwise.record.epochs import EpochLedger
from loopwise.record.errors import load_json_object
from loopwise.record.helpers import Helpers
from loopwise.record.isotime import iso
from loopwise.record.jsonlog import LOG_FILE, JsonLog
from loopwise.record.lock import RunLock
from loopwise.record.mirror import Mirrors
from loopwise.record.names import make_run_folder
from loopwise.record.provenance import new_run_info, process_identity
from loopwise.record.recorder import ColumnData, Recorder
from loopwise.record.runfile import RunFile
from loopwise.record.status import exit_status
from loopwise.record.store import STORE_FILE, Batch, StoreWriter
from loopwise.record.validate import check_json, check_key, check_number

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
STATUSES = ("running", "finished", "failed", "interrupted", "crashed")
LEVELS = ("debug", "info", "warning", "error")
H = TypeVar("H")


class Run:
    """The writer side of one run. Create with :meth:`create` or :meth:`reopen`."""

    def __init__(self, path: Path, info: dict[str, Any], *, flush_interval: float,
                 heartbeat_interval: float, clock: Callable[[], float],
                 lock: RunLock | None = None) -> None:
        self.path = path
        self._file = RunFile(path / RUN_FILE, info)
        self._writer_lock = lock  # released by close()
        self._clock = clock
        self._heartbeat_interval = heartbeat_interval
        self._last_heartbeat = clock()
        self._info_due = False  # run.json's step and epoch to be refreshed at the next tick
        self._closers: list[Callable[[], None]] = []
        self._close_lock = threading.Lock()
        self._closed = False
        self._global_step = int(info.get("global_step", 0))
        self._epochs = EpochLedger(int(info.get("epoch", 0)))
        self._helpers = Helpers()
        self._mirrors = Mirrors(self._exporter_failed)
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
        atexit.register(self._atexit)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str] = "runs",
        name: str | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        flush_interval: float = 0.2,
        heartbeat_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> Run:
        """Create a new run folder ``root/name`` (a generated, time-sortable name when None)."""
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a path, got {type(root).__name__}")
        if not heartbeat_interval > 0:
            raise ValueError(f"heartbeat_interval must be > 0 seconds, got {heartbeat_interval}")
        if config is not None:
            check_json(config, what="config")
        path = make_run_folder(root, name, clock=clock)
        info = new_run_info(path.name, clock())
        lock = RunLock.acquire(path)
        try:
            run = cls(path, info, flush_interval=flush_interval,
                      heartbeat_interval=heartbeat_interval, clock=clock, lock=lock)
        except BaseException:
            lock.release()
            raise
        if config is not None:
            run.set_config(config)
        return run

    @classmethod
    def reopen(
        cls,
        path: str | os.PathLike[str],
        *,
        flush_interval: float = 0.2,
        heartbeat_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> Run:
        """Continue the run in ``path``: status back to ``running``, a ``resumed`` event added.
        Another live process writing it is a ``RunLockedError`` naming its PID."""
        run_path = Path(path).absolute()
        info_file = run_path / RUN_FILE
        if not info_file.is_file():
            raise FileNotFoundError(f"{run_path} is not a loopwise run folder (no {RUN_FILE})")
        lock = RunLock.acquire(run_path)
        try:
            return cls._reopen(run_path, lock, flush_interval=flush_interval,
                               heartbeat_interval=heartbeat_interval, clock=clock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _reopen(cls, run_path: Path, lock: RunLock, *, flush_interval: float,
                heartbeat_interval: float, clock: Callable[[], float]) -> Run:
        info_file = run_path / RUN_FILE
        hint = "it was left as it was; restore it from a backup, or start a new run"
        info = load_json_object(info_file, hint=hint)
        if (run_path / CONFIG_FILE).exists():  # a resume never writes over what it cannot read
            load_json_object(run_path / CONFIG_FILE, hint=hint)
        now = clock()
        previous = info.get("status")
        info.update(status="running", end_time=None, heartbeat=now, **process_identity())
        info.setdefault("resumes", []).append({"time": now, "previous_status": previous})
        run = cls(run_path, info, flush_interval=flush_interval,
                  heartbeat_interval=heartbeat_interval, clock=clock, lock=lock)
        # run.json's step and epoch are refreshed every heartbeat: after a crash the record's
        # own last step and epoch are the later ones
        run._epochs, last_step = EpochLedger.of_folder(run_path, run.epoch)
        run._global_step = max(run._global_step, last_step)
        run.log_event("resumed", f"run resumed (it was {previous})",
                      data={"previous_status": previous})
        return run

    # -- properties --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self._file.get("name"))

    @property
    def id(self) -> str:
        return str(self._file.get("id"))

    @property
    def status(self) -> str:
        return str(self._file.get("status"))

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def info(self) -> dict[str, Any]:
        """A copy of what ``run.json`` holds."""
        return self._file.snapshot()

    # -- the global step: owned by the run -----------------------------------------------------
    @property
    def global_step(self) -> int:
        """Training steps done in this run (over every entry point and resume). Advanced only
        by :meth:`advance`; a resume sets it back with :meth:`restore_step`."""
        return self._global_step

    def advance(self, steps: int = 1) -> int:
        """Count ``steps`` more training steps; return the new global step."""
        if type(steps) is not int or steps < 0:
            raise ValueError(f"advance() takes a non-negative int of steps, got {steps!r}")
        self._global_step += steps
        return self._global_step

    @property
    def epoch(self) -> int:
        """The last epoch that ended in this run (0 before the first): the largest epoch given
        to :meth:`log_epoch`."""
        return self._epochs.epoch

    def restore_step(self, step: int, *, epoch: int | None = None) -> None:
        """Set the global step to ``step`` (a resume from a checkpoint taken at that step) and,
        given ``epoch``, the last ended epoch to the checkpoint's (``run.json`` may be behind
        it or ahead of it after a kill); summaries already recorded are still not repeated."""
        if type(step) is not int or step < 0:
            raise ValueError(f"restore_step() takes a non-negative int, got {step!r}")
        if epoch is not None and (type(epoch) is not int or epoch < 0):
            raise ValueError(f"restore_step(epoch=) takes a non-negative int, got {epoch!r}")
        self._global_step = step
        if epoch is not None:
            self._epochs.epoch = epoch

    # -- per-run helpers -------------------------------------------------------------------------
    def helper(self, kind: type[H], factory: Callable[[], H]) -> H:
        """The run's one helper of type ``kind`` (system sampler, health monitor...), made by
        ``factory()`` the first time it is asked for."""
        return self._helpers.get(kind, factory)

    def find_helper(self, kind: type[H]) -> H | None:
        """The run's helper of type ``kind``, or None when none was made."""
        return self._helpers.find(kind)

    # -- exporters ---------------------------------------------------------------------------
    def add_exporter(self, exporter: Recorder) -> None:
        """Mirror this run into ``exporter`` (a :class:`~loopwise.record.recorder.Recorder`;
        attaching it again does nothing): its config now, then everything the store commits
        (handed over from the writer thread, never the training thread), and the close. An
        exporter must not block: the ones in :mod:`loopwise.export` queue and deliver from a
        thread of their own, or count and leave the delivery to a process of their own that
        reads this run's record (``delivery="process"``)."""
        if self._closed:
            raise RuntimeError(f"run {self.name!r} is closed; attach exporters before it ends")
        bind = getattr(exporter, "bind_run", None)
        if callable(bind) and all(e is not exporter for e in self._mirrors):
            bind(self)  # optional: the exporter learns the run (folder, step, events)
        config_file = self.path / CONFIG_FILE
        self._mirrors.add(exporter, load_json_object(
            config_file, hint="repair it, or delete it to go on without a config")
            if config_file.is_file() else None)

    @property
    def exporters(self) -> list[Recorder]:
        return list(self._mirrors)

    # -- logging -----------------------------------------------------------------------------
    def log_scalar(self, key: str, value: float, *, step: int,
                   wall_time: float | None = None) -> None:
        """Record one value of the series ``key`` at ``step``."""
        check_key(key)
        self.log_scalars({key: value}, step=step, wall_time=wall_time)

    def log_scalars(self, values: Mapping[str, float], *, step: int,
                    wall_time: float | None = None) -> None:
        """Record several series at one ``step``. Values must be real numbers (NaN/inf kept)."""
        if self._closed:
            raise RuntimeError(f"run {self.name!r} is closed; nothing more can be logged to it")
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
            raise RuntimeError(f"run {self.name!r} is closed; nothing more can be logged to it")
        self._store.add_columns(columns)

    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Mapping[str, Any] | None = None) -> None:
        """Record an event (``level`` is one of debug, info, warning, error)."""
        if self._closed:
            raise RuntimeError(f"run {self.name!r} is closed; cannot log event {kind!r}")
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
            self._fail(exc)
            raise

    def log_epoch(self, epoch: int, values: Mapping[str, float], *,
                  step: int | None = None) -> None:
        """Record an epoch's summary at the global ``step`` where the epoch ended (default
        ``global_step``): series ``epoch/<name>`` plus the ``epoch`` series (value ``epoch``)
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
        at = self.global_step if step is None else step
        row = self._epochs.row(epoch, at, clean)  # one point per epoch and name, across resumes
        if not row:
            return
        clean = {k: v for k, v in clean.items() if f"epoch/{k}" in row}
        self.log_scalars(row, step=at)
        try:
            self._jsonlog.metrics(clean, step=at, epoch=epoch, time=self._clock())
        except OSError as exc:
            self._fail(exc)
            raise

    def log_system(self, values: Mapping[str, float], *, wall_time: float | None = None) -> None:
        """Record one system sample (name -> value)."""
        if self._closed:
            raise RuntimeError(f"run {self.name!r} is closed; cannot log a system sample")
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

    # -- closing -----------------------------------------------------------------------------
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
            if self._file.failure is not None:
                status = "failed"
                error = error if error is not None else str(self._file.failure)
            if error is not None and self._store.error is None:
                last_line = error.strip().splitlines()[-1] if error.strip() else "error"
                self._store.add_event(self._clock(), "error", "exception", last_line,
                                      json.dumps({"traceback": error}))
            if any(True for _ in self._mirrors):
                self._close_exporters(status, error)
            self._closed = True
            try:
                self._store.close()
            except BaseException as exc:
                self._fail(exc)
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
            self._fail(exc)
            with contextlib.suppress(OSError):
                self._jsonlog.close()
        now = self._clock()
        fields: dict[str, Any] = dict(status=status, end_time=now, heartbeat=now,
                                      ended_at=iso(now), global_step=self.global_step,
                                      epoch=self.epoch)
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

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        status, error = exit_status(exc_type, exc, tb)
        self.close(status, error=error)

    def __repr__(self) -> str:
        return f"Run(name={self.name!r}, path={str(self.path)!r}, status={self.status!r})"

    # -- internals ---------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        self._file.fail(exc)

    def _tick(self) -> None:
        now = self._clock()
        if ((self._info_due or now - self._last_heartbeat >= self._heartbeat_interval)
                and not self._closed):
            self._last_heartbeat, self._info_due = now, False
            self._file.update(heartbeat=now, global_step=self.global_step, epoch=self.epoch)

    def _close_exporters(self, status: str, error: str | None) -> None:
        """Hand the exporters the last rows and close them while the store is still open, so
        that what they say at close (what they could not deliver) lands in the record."""
        with contextlib.suppress(RuntimeError, OSError):  # a failed store: close() raises it
            self._store.flush()
        self._mirrors.close(status, error)

    def _export(self, batch: Batch) -> None:
        self._mirrors.deliver(batch)

    def _exporter_failed(self, name: str, exc: BaseException) -> None:
        self._store.add_event(self._clock(), "error", "exporter_error",
                              f"exporter {name} failed: {exc}", None)

    def _atexit(self) -> None:
        exc = getattr(sys, "last_value", None)  # set when the process dies of an exception
        status, error = exit_status(None if exc is None else type(exc), exc,
                                    None if exc is None else exc.__traceback__)
        if not self.path.is_dir():  # the folder was removed while the run was open
            print(f"loopwise: run {self.name!r} was not closed and its folder {self.path} is "
                  f"gone; nothing more was recorded", file=sys.stderr)
            return
        self.close(status, error=error)
