"""``CheckpointManager``: what to keep and when (the policy; writing is ``store``'s, the folder's
layout ``folder``'s, loading with fallback ``loading``'s).

Each save writes ``checkpoint-step<step>.pt`` atomically, then ``manifest.json`` listing it
(hash, size, step, metrics, time), and only then drops the files out of the keep set
(``policy``: the last ``keep_last``, the best ``keep_best``). ``recycle=True`` (the default)
keeps the newest dropped file as ``.spare-checkpoint`` for the next save to write over, as
PostgreSQL recycles WAL segments: half the time of filling new blocks on thin-provisioned disks
(measured in docs/benchmarks-notes.md); ``recycle=False`` deletes."""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loopwise.checkpoint.folder import (
    FORMAT,
    MANIFEST,
    SPARE,
    TMP_GLOB,
    CheckpointCheck,
    CheckpointInfo,
    file_name,
    make_folder,
    rebuild_manifest,
)
from loopwise.checkpoint.loading import backup_copy, first_good, verify_entries
from loopwise.checkpoint.policy import (
    check_policy,
    clean_metrics,
    keep_set,
    monitored_value,
    ranked,
)
from loopwise.checkpoint.store import (
    HASH_ALGORITHM,
    BackgroundWriter,
    DiskFullError,
    ManifestEntry,
    ManifestError,
    TensorSnapshot,
    read_manifest,
    save_file,
    write_manifest,
)
from loopwise.record.recorder import EventSink
from loopwise.utils.validate import check_bool, check_count
from loopwise.watch.improvement import Improvement

_log = logging.getLogger(__name__)


class CheckpointManager:
    """Keep the last ``keep_last`` and the best ``keep_best`` checkpoints of a folder.

    ``monitor`` names the metric (in ``save(..., metrics=)``) that ranks checkpoints; ``mode``
    says whether lower (``"min"``) or higher (``"max"``) is better; ``"auto"`` (the default)
    reads the name (accuracy-like names are maximised: :mod:`loopwise.watch.improvement`).
    ``backup_dir`` receives a
    copy of each new best. With ``async_save=True`` the calling thread only copies tensors into
    reused CPU buffers; a background thread writes (one write in flight; its error is raised by
    the next call or by ``close()``). ``recycle`` writes each new file over the last dropped one
    (see the module doc). ``run`` (a ``loopwise.record.Run``) receives events. ``clock``
    (Unix seconds, default ``time.time``) gives every time the manager writes: the ``time`` of
    each save in its file and in the manifest, the suffix of a corrupt manifest kept aside.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        monitor: str | None = None,
        mode: str = "auto",
        keep_last: int = 3,
        keep_best: int = 1,
        backup_dir: str | os.PathLike[str] | None = None,
        async_save: bool = False,
        recycle: bool = True,
        run: EventSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a path, got {type(directory).__name__}")
        self.keep_last, self.keep_best, mode = check_policy(monitor, mode, keep_last, keep_best)
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning Unix seconds, got {clock!r}")
        self._clock = clock
        check_bool(async_save, what="async_save")
        check_bool(recycle, what="recycle")
        self.directory = Path(directory)
        self.monitor = monitor
        self.mode = mode
        self.backup_dir = None if backup_dir is None else Path(backup_dir)
        self.recycle = recycle
        self.run = run
        for folder in (self.directory, self.backup_dir):
            if folder is not None:
                make_folder(folder)
        self._lock = threading.Lock()
        self._entries: builtins.list[ManifestEntry] | None = None
        self._best = Improvement(mode=mode)
        self._writer = BackgroundWriter() if async_save else None
        self._snapshot = TensorSnapshot() if async_save else None
        for leftover in self.directory.glob(TMP_GLOB):
            leftover.unlink()  # an interrupted write of ours; never a complete checkpoint

    # -- public API ----------------------------------------------------------------------------
    @property
    def async_save(self) -> bool:
        return self._writer is not None

    def save(self, state: Mapping[str, Any], *, step: int,
             metrics: Mapping[str, Any] | None = None) -> Path:
        """Save ``state`` as the checkpoint of ``step``; return its path. Synchronous by
        default: when this returns the file and the manifest are on disk. With ``async_save``
        the file is written in the background (``wait()`` to be sure). ``run`` is flushed first:
        its record up to here is on disk before the checkpoint, so a resume leaves no gap."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict (e.g. {{'model': model.state_dict()}}), "
                            f"got {type(state).__name__}")
        step = check_count(step, what="step")
        clean = clean_metrics(metrics)
        if self.monitor is not None and self.monitor not in clean:
            have = ", ".join(sorted(clean)) or "none"
            raise KeyError(f"CheckpointManager monitors {self.monitor!r} but save() got metrics: "
                           f"{have}; pass metrics={{{self.monitor!r}: value}}")
        flush = getattr(self.run, "flush", None)
        if callable(flush) and not getattr(self.run, "closed", False):
            with contextlib.suppress(Exception):  # a record error shows on the run's next call
                flush()
        self.wait()  # one write in flight at most; raises the previous write's error
        self._ensure_loaded()
        name = file_name(step)
        now = float(self._clock())
        with self._lock:
            assert self._entries is not None
            seq = max((e.seq for e in self._entries), default=0) + 1
        payload = {FORMAT: 1, "step": step, "seq": seq, "time": now, "metrics": clean,
                   "state": state}
        if self._writer is None:
            self._commit(name, payload, step, seq, now, clean)
        else:
            assert self._snapshot is not None
            snap = self._snapshot.take(payload)
            self._writer.submit(lambda: self._commit(name, snap, step, seq, now, clean))
        return self.directory / name

    def wait(self) -> None:
        """Block until an async write in flight is on disk; raise its error, if any."""
        if self._writer is not None:
            self._writer.wait()

    def close(self) -> None:
        """Wait for the last write and stop the writer thread. Idempotent."""
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> CheckpointManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list(self) -> builtins.list[CheckpointInfo]:
        """Kept checkpoints, oldest save first."""
        self.wait()
        return [CheckpointInfo.of(self.directory, e) for e in self._ordered()]

    def best(self) -> CheckpointInfo | None:
        """The best kept checkpoint by ``monitor`` (None without monitor or checkpoints)."""
        top = ranked(self._ordered(), self.monitor, self.mode)
        return CheckpointInfo.of(self.directory, top[0]) if top else None

    def latest(self) -> CheckpointInfo | None:
        entries = self._ordered()
        return CheckpointInfo.of(self.directory, entries[-1]) if entries else None

    def load_latest(self, *, map_location: Any = "cpu",
                    allow_pickle: bool = False) -> dict[str, Any] | None:
        """The state of the newest good checkpoint, None when there is none.

        A bad file is reported and the one before it is tried; when every kept checkpoint is
        bad, :class:`CheckpointError` lists them (never a silent fresh start).
        """
        entries = list(reversed(self._ordered()))
        return self._load_first(entries, map_location, allow_pickle)

    def load_best(self, *, map_location: Any = "cpu",
                  allow_pickle: bool = False) -> dict[str, Any] | None:
        """The state of the best good checkpoint by ``monitor`` (None when there is none)."""
        if self.monitor is None:
            raise ValueError("load_best() needs CheckpointManager(monitor='metric name')")
        return self._load_first(ranked(self._ordered(), self.monitor, self.mode), map_location,
                                allow_pickle)

    def verify(self) -> builtins.list[CheckpointCheck]:
        """Check the size and hash of every kept checkpoint (bad ones are also reported)."""
        return verify_entries(self.directory, self._ordered(), report=self._report)

    # -- internals -----------------------------------------------------------------------------
    def _ordered(self) -> builtins.list[ManifestEntry]:
        self.wait()
        self._ensure_loaded()
        with self._lock:
            assert self._entries is not None
            return sorted(self._entries, key=lambda e: e.seq)

    def _commit(self, name: str, payload: Mapping[str, Any], step: int, seq: int, now: float,
                metrics: dict[str, float]) -> None:
        path = self.directory / name
        spare = self.directory / SPARE
        try:
            stored = save_file(path, payload, reuse=spare if self.recycle else None)
        except DiskFullError as exc:
            raise DiskFullError(f"{exc}; {self._intact()}") from exc
        entry = ManifestEntry(file=name, step=step, size=stored.size, hash=stored.hash,
                              algorithm=stored.algorithm, time=now, seq=seq, metrics=metrics)
        with self._lock:
            assert self._entries is not None
            entries = [e for e in self._entries if e.file != name] + [entry]
            kept = keep_set(entries, keep_last=self.keep_last, keep_best=self.keep_best,
                            monitor=self.monitor, mode=self.mode)
            self._write_manifest(kept)
            self._entries = kept
        dropped = [self.directory / e.file for e in entries if e not in kept]
        if self.recycle and dropped:
            with contextlib.suppress(FileNotFoundError):
                os.replace(dropped.pop(), spare)  # the next save writes over it
        for old in dropped:
            old.unlink(missing_ok=True)
        value = monitored_value(entry, self.monitor)
        if value is not None and self._best.update(value, step) and self.backup_dir is not None:
            self._backup(path, entry)

    def _intact(self) -> str:
        """Which checkpoint a failed save left as the newest (for the error message)."""
        with self._lock:
            entries = sorted(self._entries or [], key=lambda e: e.seq)
        if not entries:
            return "there is no previous checkpoint in this folder"
        last = entries[-1]
        return (f"the previous checkpoint {self.directory / last.file} (step {last.step}) is "
                "intact; free some space and save again")

    def _backup(self, path: Path, entry: ManifestEntry) -> None:
        assert self.backup_dir is not None
        backup_copy(path, self.backup_dir, entry, monitor=self.monitor, mode=self.mode)

    def _write_manifest(self, entries: builtins.list[ManifestEntry]) -> None:
        write_manifest(self.directory / MANIFEST, entries, monitor=self.monitor, mode=self.mode,
                       hash_algorithm=HASH_ALGORITHM)

    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._entries is not None:
                return
            manifest = self.directory / MANIFEST
            try:
                entries = read_manifest(manifest)
            except ManifestError as exc:
                entries = rebuild_manifest(self.directory, exc, report=self._report,
                                           write=self._write_manifest, now=self._clock())
            self._entries = entries
            self._best.reset()
            for entry in sorted(entries, key=lambda e: e.seq):
                value = monitored_value(entry, self.monitor)
                if value is not None:
                    self._best.update(value, entry.step)

    def load_latest_info(self, *, map_location: Any = "cpu", allow_pickle: bool = False
                         ) -> tuple[dict[str, Any], CheckpointInfo] | None:
        """As :meth:`load_latest`, with the kept checkpoint the state came from."""
        entries = list(reversed(self._ordered()))
        found = self._load_entry(entries, map_location, allow_pickle)
        return None if found is None else (found[0], CheckpointInfo.of(self.directory, found[1]))

    def _load_first(self, entries: builtins.list[ManifestEntry], map_location: Any,
                    allow_pickle: bool) -> dict[str, Any] | None:
        found = self._load_entry(entries, map_location, allow_pickle)
        return None if found is None else found[0]

    def _load_entry(self, entries: builtins.list[ManifestEntry], map_location: Any,
                    allow_pickle: bool) -> tuple[dict[str, Any], ManifestEntry] | None:
        return first_good(self.directory, entries, map_location=map_location,
                          allow_pickle=allow_pickle, report=self._report)

    def _report(self, kind: str, message: str, data: dict[str, Any]) -> None:
        _log.warning(message)
        if self.run is not None and not getattr(self.run, "closed", False):
            self.run.log_event(kind, message, level="warning", data=data)
