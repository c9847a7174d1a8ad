"""``CheckpointManager``: what to keep and when (the policy half; writing lives in
``checkpoint_store``).

A folder holds ``checkpoint-step<step>.pt`` files and ``manifest.json``. Each save writes the
file atomically, then a manifest that lists it with its hash, size, step, metrics and time, and
only then deletes the files that fall out of the keep set: the last ``keep_last`` saves and the
best ``keep_best`` by the monitored metric. Loading verifies the hash; a bad file is reported
(run event + log warning) and the previous good one is used.
"""

from __future__ import annotations

import builtins
import logging
import math
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from loopwise.train.checkpoint_store import (
    HASH_ALGORITHM,
    BackgroundWriter,
    CheckpointError,
    CorruptCheckpointError,
    ManifestEntry,
    ManifestError,
    TensorSnapshot,
    check_file,
    copy_file,
    digest_file,
    load_file,
    read_manifest,
    save_file,
    write_manifest,
)
from loopwise.watch.improvement import Improvement, check_mode

__all__ = ["CheckpointCheck", "CheckpointError", "CheckpointInfo", "CheckpointManager",
           "CorruptCheckpointError"]

MANIFEST = "manifest.json"
_FILE_RE = re.compile(r"^checkpoint-step(\d+)\.pt$")
_FORMAT = "loopwise_checkpoint"
_log = logging.getLogger(__name__)


class EventSink(Protocol):
    def log_event(self, kind: str, message: str, *, level: str = ...,
                  data: Mapping[str, Any] | None = ...) -> None: ...


@dataclass(frozen=True)
class CheckpointInfo:
    """One kept checkpoint as the manifest describes it."""

    path: Path
    step: int
    metrics: dict[str, float]
    size: int
    hash: str
    algorithm: str
    time: float


@dataclass(frozen=True)
class CheckpointCheck:
    """The result of verifying one checkpoint: ``problem`` is None when it is good."""

    path: Path
    step: int
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _check_count(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{what} must be an int >= 0, got {value!r}")
    return value


def _clean_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict of name -> number, got {type(metrics).__name__}")
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise TypeError(f"metric names must be strings, got {key!r}")
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()  # a save is an explicit request; reading a value now is fine
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"metric {key!r} must be a number, got {type(value).__name__}")
        clean[key] = float(value)
    return clean


class CheckpointManager:
    """Keep the last ``keep_last`` and the best ``keep_best`` checkpoints of a folder.

    ``monitor`` names the metric (in ``save(..., metrics=)``) that ranks checkpoints; ``mode``
    says whether lower (``"min"``) or higher (``"max"``) is better. ``backup_dir`` receives a
    copy of each new best. With ``async_save=True`` the calling thread only copies tensors into
    reused CPU buffers; a background thread writes (one write in flight; its error is raised by
    the next call or by ``close()``). ``run`` (a ``loopwise.record.Run``) receives events.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        monitor: str | None = None,
        mode: str = "min",
        keep_last: int = 3,
        keep_best: int = 1,
        backup_dir: str | os.PathLike[str] | None = None,
        async_save: bool = False,
        run: EventSink | None = None,
    ) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a path, got {type(directory).__name__}")
        if monitor is not None and (not isinstance(monitor, str) or not monitor):
            raise ValueError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
        check_mode(mode)
        self.keep_last = _check_count(keep_last, "keep_last")
        self.keep_best = _check_count(keep_best, "keep_best")
        if self.keep_last == 0 and (self.keep_best == 0 or monitor is None):
            raise ValueError(
                "this CheckpointManager would keep nothing: set keep_last >= 1, or monitor= a "
                "metric with keep_best >= 1"
            )
        if not isinstance(async_save, bool):
            raise TypeError(f"async_save must be True or False, got {async_save!r}")
        self.directory = Path(directory)
        self.monitor = monitor
        self.mode = mode
        self.backup_dir = None if backup_dir is None else Path(backup_dir)
        self.run = run
        for folder in (self.directory, self.backup_dir):
            if folder is None:
                continue
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OSError(f"cannot create checkpoint folder {folder}: {exc.strerror}; "
                              "pass a folder you can write to") from exc
            if not os.access(folder, os.W_OK):
                raise PermissionError(f"checkpoint folder {folder} is not writable; "
                                      "pass a folder you can write to")
        self._lock = threading.Lock()
        self._entries: builtins.list[ManifestEntry] | None = None
        self._best = Improvement(mode=mode)
        self._writer = BackgroundWriter() if async_save else None
        self._snapshot = TensorSnapshot() if async_save else None
        for leftover in self.directory.glob(".checkpoint-step*.tmp"):
            leftover.unlink()  # an interrupted write of ours; never a complete checkpoint

    # -- public API ----------------------------------------------------------------------------
    @property
    def async_save(self) -> bool:
        return self._writer is not None

    def save(self, state: Mapping[str, Any], *, step: int,
             metrics: Mapping[str, Any] | None = None) -> Path:
        """Save ``state`` as the checkpoint of ``step``; return its path.

        Synchronous by default: when this returns the file and the manifest are on disk.
        With ``async_save`` the file is written in the background (``wait()`` to be sure).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict (e.g. {{'model': model.state_dict()}}), "
                            f"got {type(state).__name__}")
        if type(step) is not int or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        clean = _clean_metrics(metrics)
        if self.monitor is not None and self.monitor not in clean:
            have = ", ".join(sorted(clean)) or "none"
            raise KeyError(
                f"CheckpointManager monitors {self.monitor!r} but save() got metrics: {have}; "
                f"pass metrics={{{self.monitor!r}: value}}"
            )
        self.wait()  # one write in flight at most; raises the previous write's error
        self._ensure_loaded()
        name = f"checkpoint-step{step:08d}.pt"
        now = time.time()
        with self._lock:
            assert self._entries is not None
            seq = max((e.seq for e in self._entries), default=0) + 1
        payload = {_FORMAT: 1, "step": step, "seq": seq, "time": now, "metrics": clean,
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
        return [self._info(e) for e in self._ordered()]

    def best(self) -> CheckpointInfo | None:
        """The best kept checkpoint by ``monitor`` (None without monitor or checkpoints)."""
        ranked = self._ranked(self._ordered())
        return self._info(ranked[0]) if ranked else None

    def latest(self) -> CheckpointInfo | None:
        entries = self._ordered()
        return self._info(entries[-1]) if entries else None

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
        return self._load_first(self._ranked(self._ordered()), map_location, allow_pickle)

    def verify(self) -> builtins.list[CheckpointCheck]:
        """Check the size and hash of every kept checkpoint (bad ones are also reported)."""
        results = []
        for entry in self._ordered():
            path = self.directory / entry.file
            problem = check_file(path, entry.stored)
            if problem is not None:
                self._report("checkpoint_corrupt", f"checkpoint {path} is unusable: {problem}",
                             {"file": entry.file, "step": entry.step})
            results.append(CheckpointCheck(path=path, step=entry.step, problem=problem))
        return results

    # -- internals -----------------------------------------------------------------------------
    def _info(self, entry: ManifestEntry) -> CheckpointInfo:
        return CheckpointInfo(path=self.directory / entry.file, step=entry.step,
                              metrics=dict(entry.metrics), size=entry.size, hash=entry.hash,
                              algorithm=entry.algorithm, time=entry.time)

    def _ordered(self) -> builtins.list[ManifestEntry]:
        self.wait()
        self._ensure_loaded()
        with self._lock:
            assert self._entries is not None
            return sorted(self._entries, key=lambda e: e.seq)

    def _value(self, entry: ManifestEntry) -> float | None:
        if self.monitor is None:
            return None
        value = entry.metrics.get(self.monitor)
        return None if value is None or math.isnan(value) else value

    def _ranked(self, entries: builtins.list[ManifestEntry]) -> builtins.list[ManifestEntry]:
        """Best first; ties go to the earlier save (the first to reach a value keeps it)."""
        scored = [(v, e) for e in entries if (v := self._value(e)) is not None]
        sign = 1.0 if self.mode == "min" else -1.0
        scored.sort(key=lambda ve: (sign * ve[0], ve[1].seq))
        return [e for _, e in scored]

    def _keep(self, entries: builtins.list[ManifestEntry]) -> builtins.list[ManifestEntry]:
        by_seq = sorted(entries, key=lambda e: e.seq)
        keep = {e.file for e in by_seq[-self.keep_last:]} if self.keep_last else set()
        keep |= {e.file for e in self._ranked(by_seq)[: self.keep_best]}
        return [e for e in by_seq if e.file in keep]

    def _commit(self, name: str, payload: Mapping[str, Any], step: int, seq: int, now: float,
                metrics: dict[str, float]) -> None:
        path = self.directory / name
        stored = save_file(path, payload)
        entry = ManifestEntry(file=name, step=step, size=stored.size, hash=stored.hash,
                              algorithm=stored.algorithm, time=now, seq=seq, metrics=metrics)
        with self._lock:
            assert self._entries is not None
            entries = [e for e in self._entries if e.file != name] + [entry]
            kept = self._keep(entries)
            self._write_manifest(kept)
            self._entries = kept
        for dropped in entries:
            if dropped not in kept:
                (self.directory / dropped.file).unlink(missing_ok=True)
        value = self._value(entry)
        if value is not None and self._best.update(value, step) and self.backup_dir is not None:
            self._backup(path, entry)

    def _backup(self, path: Path, entry: ManifestEntry) -> None:
        assert self.backup_dir is not None
        target = self.backup_dir / entry.file
        stored = copy_file(path, target)
        if stored.hash != entry.hash:
            raise CheckpointError(f"backup copy {target} does not match {path}; disk trouble?")
        write_manifest(self.backup_dir / MANIFEST, [entry], monitor=self.monitor, mode=self.mode)
        for old in self.backup_dir.glob("checkpoint-step*.pt"):
            if old.name != entry.file:
                old.unlink(missing_ok=True)

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
                entries = self._rebuild(manifest, exc)
            self._entries = entries
            self._best.reset()
            for entry in sorted(entries, key=lambda e: e.seq):
                value = self._value(entry)
                if value is not None:
                    self._best.update(value, entry.step)

    def _rebuild(self, manifest: Path, why: ManifestError) -> builtins.list[ManifestEntry]:
        """No usable manifest: rebuild it from the checkpoint files that load cleanly."""
        files = sorted(p for p in self.directory.iterdir() if _FILE_RE.match(p.name))
        if not files:
            if manifest.exists():
                raise CheckpointError(f"{why}; no checkpoint files next to it. Delete it to "
                                      "start this folder afresh") from why
            return []
        if manifest.exists():
            kept_as = manifest.with_name(f"{MANIFEST}.corrupt-{int(time.time())}")
            os.replace(manifest, kept_as)  # kept as it was, for inspection
        entries: builtins.list[ManifestEntry] = []
        for path in files:
            try:
                payload = load_file(path)
                if not isinstance(payload, dict) or _FORMAT not in payload:
                    raise CorruptCheckpointError(path, "not a loopwise checkpoint")
            except CheckpointError as exc:
                self._report("checkpoint_corrupt", f"{exc}; left out of the rebuilt manifest",
                             {"file": path.name})
                continue
            stored = digest_file(path)
            entries.append(ManifestEntry(
                file=path.name, step=int(payload["step"]), size=stored.size, hash=stored.hash,
                algorithm=stored.algorithm, time=float(payload["time"]), seq=int(payload["seq"]),
                metrics=_clean_metrics(payload.get("metrics"))))
        self._write_manifest(entries)
        self._report("manifest_rebuilt",
                     f"{why}; rebuilt it from {len(entries)} of {len(files)} checkpoint files",
                     {"files": [e.file for e in entries]})
        return entries

    def _load_first(self, entries: builtins.list[ManifestEntry], map_location: Any,
                    allow_pickle: bool) -> dict[str, Any] | None:
        problems = []
        for entry in entries:
            path = self.directory / entry.file
            try:
                payload = load_file(path, expected=entry.stored, map_location=map_location,
                                    allow_pickle=allow_pickle)
            except CorruptCheckpointError as exc:
                problems.append(str(exc))
                self._report("checkpoint_corrupt",
                             f"{exc}; falling back to the previous good checkpoint",
                             {"file": entry.file, "step": entry.step})
                continue
            if not isinstance(payload, dict) or _FORMAT not in payload:
                raise CheckpointError(f"{path} is not a loopwise checkpoint (no {_FORMAT!r} key)")
            state: dict[str, Any] = payload["state"]
            return state
        if problems:
            raise CheckpointError("no usable checkpoint in "
                                  f"{self.directory}: " + "; ".join(problems))
        return None

    def _report(self, kind: str, message: str, data: dict[str, Any]) -> None:
        _log.warning(message)
        if self.run is not None and not getattr(self.run, "closed", False):
            self.run.log_event(kind, message, level="warning", data=data)
