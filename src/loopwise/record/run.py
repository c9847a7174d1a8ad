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

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from loopwise.record.epochs import EpochLedger
from loopwise.record.errors import load_json_object
from loopwise.record.folder import CONFIG_FILE, RUN_FILE, STORE_FILE
from loopwise.record.helpers import Helpers
from loopwise.record.lock import RunLock
from loopwise.record.media import ImageBudget
from loopwise.record.names import make_run_folder
from loopwise.record.provenance import new_run_info, process_identity
from loopwise.record.reader import RunReader
from loopwise.record.recorder import ColumnData, Recorder
from loopwise.record.runfile import RunFile
from loopwise.record.status import exit_status
from loopwise.record.storefile import check_store
from loopwise.record.writer import RunWriter
from loopwise.utils.validate import check_count, check_json, check_optional_int

__all__ = ["CONFIG_FILE", "RUN_FILE", "STATUSES", "Run", "check_reopen"]

STATUSES = ("running", "finished", "failed", "interrupted", "crashed")
REOPEN_HINT = "it was left as it was; restore it from a backup, or start a new run"


def check_reopen(path: str | os.PathLike[str]) -> None:
    """Refuse, before anything is written, to continue a run whose files cannot be read:
    ``run.json``, ``config.json`` and ``store.sqlite`` (a ``CorruptRecordError`` naming the
    file). A refused run's files stay byte-identical. :meth:`Run.reopen` calls it; fit and
    Workflow call it before they look at checkpoints."""
    run_path = Path(path)
    load_json_object(run_path / RUN_FILE, hint=REOPEN_HINT)
    if (run_path / CONFIG_FILE).exists():  # a resume never writes over what it cannot read
        load_json_object(run_path / CONFIG_FILE, hint=REOPEN_HINT)
    check_store(run_path / STORE_FILE, hint=REOPEN_HINT)
H = TypeVar("H")


class Run:
    """The writer side of one run. Create with :meth:`create` or :meth:`reopen`."""

    def __init__(self, path: Path, info: dict[str, Any], *, flush_interval: float,
                 heartbeat_interval: float, clock: Callable[[], float],
                 lock: RunLock | None = None, image_budget: ImageBudget | None = None) -> None:
        self.path = path
        self._file = RunFile(path / RUN_FILE, info)
        self._helpers = Helpers()
        self._writer = RunWriter(path, self._file, flush_interval=flush_interval,
                                 heartbeat_interval=heartbeat_interval, clock=clock, lock=lock,
                                 image_budget=image_budget)
        self._store = self._writer.store  # the run's record files, as its writer holds them
        self._jsonlog = self._writer.jsonlog

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
        max_images: int = 1000,
        max_image_mib: float = 256.0,
    ) -> Run:
        """Create a new run folder ``root/name`` (a generated, time-sortable name when None).
        ``max_images`` and ``max_image_mib`` are the run's image budget (``log_image``)."""
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a path, got {type(root).__name__}")
        if not heartbeat_interval > 0:
            raise ValueError(f"heartbeat_interval must be > 0 seconds, got {heartbeat_interval}")
        if config is not None:
            check_json(config, what="config")
        budget = ImageBudget(max_images, max_image_mib)
        path = make_run_folder(root, name, clock=clock)
        info = new_run_info(path.name, clock())
        lock = RunLock.acquire(path)
        if (path / RUN_FILE).exists():  # an unborn run reused: another creator was quicker
            lock.release()
            raise FileExistsError(f"a run named {path.name!r} already exists in {path.parent}; "
                                  "choose another name, or leave name=None for a generated one")
        try:
            run = cls(path, info, flush_interval=flush_interval,
                      heartbeat_interval=heartbeat_interval, clock=clock, lock=lock,
                      image_budget=budget)
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
        max_images: int = 1000,
        max_image_mib: float = 256.0,
    ) -> Run:
        """Continue the run in ``path``: status back to ``running``, a ``resumed`` event added.
        Another live process writing it is a ``RunLockedError`` naming its PID."""
        run_path = Path(path).absolute()
        info_file = run_path / RUN_FILE
        if not info_file.is_file():
            raise FileNotFoundError(f"{run_path} is not a loopwise run folder (no {RUN_FILE})")
        budget = ImageBudget(max_images, max_image_mib)
        lock = RunLock.acquire(run_path)
        try:
            return cls._reopen(run_path, lock, flush_interval=flush_interval,
                               heartbeat_interval=heartbeat_interval, clock=clock,
                               image_budget=budget)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _reopen(cls, run_path: Path, lock: RunLock, *, flush_interval: float,
                heartbeat_interval: float, clock: Callable[[], float],
                image_budget: ImageBudget) -> Run:
        info_file = run_path / RUN_FILE
        check_reopen(run_path)
        info = load_json_object(info_file, hint=REOPEN_HINT)
        now = clock()
        previous = info.get("status")
        info.update(status="running", end_time=None, heartbeat=now, **process_identity())
        info.setdefault("resumes", []).append({"time": now, "previous_status": previous})
        run = cls(run_path, info, flush_interval=flush_interval,
                  heartbeat_interval=heartbeat_interval, clock=clock, lock=lock,
                  image_budget=image_budget)
        # run.json's step and epoch are refreshed every heartbeat: after a crash the record's
        # own last step and epoch are the later ones
        writer = run._writer
        writer.epochs, last_step = EpochLedger.of_record(RunReader(run_path), run.epoch)
        writer.global_step = max(writer.global_step, last_step)
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
        return self._writer.closed

    @property
    def info(self) -> dict[str, Any]:
        """A copy of what ``run.json`` holds."""
        return self._file.snapshot()

    # -- the global step: owned by the run -----------------------------------------------------
    @property
    def global_step(self) -> int:
        """Training steps done in this run (over every entry point and resume). Advanced only
        by :meth:`advance`; a resume sets it back with :meth:`restore_step`."""
        return self._writer.global_step

    def advance(self, steps: int = 1) -> int:
        """Count ``steps`` more training steps; return the new global step."""
        steps = check_count(steps, what="advance()'s steps")
        self._writer.global_step += steps
        return self._writer.global_step

    @property
    def epoch(self) -> int:
        """The last epoch that ended in this run (0 before the first): the largest epoch given
        to :meth:`log_epoch`."""
        return self._writer.epochs.epoch

    def restore_step(self, step: int, *, epoch: int | None = None) -> None:
        """Set the global step to ``step`` (a resume from a checkpoint taken at that step) and,
        given ``epoch``, the last ended epoch to the checkpoint's (``run.json`` may be behind
        it or ahead of it after a kill); summaries already recorded are still not repeated."""
        step = check_count(step, what="restore_step()'s step")
        epoch = check_optional_int(epoch, what="restore_step(epoch=)", minimum=0)
        self._writer.global_step = step
        if epoch is not None:
            self._writer.epochs.epoch = epoch

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
        if self._writer.closed:
            raise RuntimeError(f"run {self.name!r} is closed; attach exporters before it ends")
        bind = getattr(exporter, "bind_run", None)
        if callable(bind) and all(e is not exporter for e in self._writer.mirrors):
            bind(self)  # optional: the exporter learns the run (folder, step, events)
        config_file = self.path / CONFIG_FILE
        self._writer.mirrors.add(exporter, load_json_object(
            config_file, hint="repair it, or delete it to go on without a config")
            if config_file.is_file() else None)

    @property
    def exporters(self) -> list[Recorder]:
        return list(self._writer.mirrors)

    def __repr__(self) -> str:
        return f"Run(name={self.name!r}, path={str(self.path)!r}, status={self.status!r})"

    # -- writing: the run's writer does it -------------------------------------------------------
    def log_scalar(self, key: str, value: float, *, step: int,
                   wall_time: float | None = None) -> None:
        """Record one value of the series ``key`` at ``step``."""
        self._writer.log_scalar(key, value, step=step, wall_time=wall_time)

    def log_scalars(self, values: Mapping[str, float], *, step: int,
                    wall_time: float | None = None) -> None:
        """Record several series at one ``step``. Values must be real numbers (NaN/inf kept)."""
        self._writer.log_scalars(values, step=step, wall_time=wall_time)

    def log_columns(self, columns: Mapping[str, ColumnData]) -> None:
        """Queue ``{key: (steps, wall_times, values)}`` columns of floats (the loop-side
        accumulator's hand-over: keys and values were checked when they were logged)."""
        self._writer.log_columns(columns)

    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Mapping[str, Any] | None = None) -> None:
        """Record an event (``level`` is one of debug, info, warning, error)."""
        self._writer.log_event(kind, message, level=level, data=data)

    def log_epoch(self, epoch: int, values: Mapping[str, float], *,
                  step: int | None = None) -> None:
        """Record an epoch's summary at the global ``step`` where the epoch ended (default
        ``global_step``; ``epoch`` on a run whose step never advanced): series ``epoch/<name>``
        plus the ``epoch`` series, and one
        ``metrics`` line in the JSON log (``docs/record.md``)."""
        self._writer.log_epoch(epoch, values, step=step)

    def log_system(self, values: Mapping[str, float], *, wall_time: float | None = None) -> None:
        """Record one system sample (name -> value)."""
        self._writer.log_system(values, wall_time=wall_time)

    def log_histogram(self, name: str, values: Any, *, step: int | None = None,
                      bins: int = 64) -> None:
        """Record the distribution of ``values`` (a tensor, a NumPy array, a sequence of
        numbers) at ``step`` (default: the global step) in ``bins`` equal bins. The caller only
        queues a copy; binning runs on the run's media thread (``docs/record.md``). A tensor on
        a device is taken as a :func:`loopwise.watch.hostcopy.host_copy` (TrainingMonitor and
        TrainingSession do that)."""
        self._writer.media.log_histogram(name, values, step=step, bins=bins)

    def log_image(self, name: str, image: Any, *, step: int | None = None) -> None:
        """Record an image at ``step``: a path to a PNG file, PNG bytes, an HxWx{1,3,4} uint8
        array (or CPU tensor) or a matplotlib figure; stored once per content under
        ``images/`` in the run folder, within the run's image budget."""
        self._writer.media.log_image(name, image, step=step)

    def log_text(self, name: str, text: str, *, step: int | None = None) -> None:
        """Record a text entry (e.g. a sample prediction, a table) at ``step``."""
        self._writer.media.log_text(name, text, step=step)

    @property
    def dropped_images(self) -> int:
        """Images not recorded because the run's image budget was spent."""
        return self._writer.media.dropped_images

    def set_config(self, config: Mapping[str, Any]) -> None:
        """Write ``config.json`` atomically; a value JSON cannot hold is refused by key."""
        self._writer.set_config(config)

    def set_info(self, **fields: Any) -> None:
        """Add JSON fields to ``run.json`` (e.g. a model summary line); core fields are refused."""
        self._writer.set_info(**fields)

    def flush(self, *, wait: bool = True) -> None:
        """Block until everything logged so far is in the store (``run.json``'s step and epoch
        follow from the store's thread within ``flush_interval``). ``wait=False`` leaves the
        writing to the store's thread (within ``flush_interval``): the caller does none of it."""
        if type(wait) is not bool:
            raise TypeError(f"flush(wait=) takes True or False, got {wait!r}")
        self._writer.flush(wait=wait)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the run closes (last registered, first called)."""
        self._writer.on_close(callback)

    # -- the end -------------------------------------------------------------------------------
    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        """Stop helpers, drain and close the exporters, flush the store and write the final
        status. Idempotent."""
        self._writer.close(status, error=error)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        status, error = exit_status(exc_type, exc, tb)
        self.close(status, error=error)
