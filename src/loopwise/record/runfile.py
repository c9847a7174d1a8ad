"""``run.json``: the run's info, rewritten whole and atomically under one lock (the store's
heartbeat thread and the caller both update it)."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from loopwise.record.errors import DiskFullError, is_disk_full
from loopwise.utils.atomic import atomic_write_json, json_bytes, write_in_place


class RunFile:
    """The info dict of ``run.json`` and the lock every write takes. ``failure`` is the write
    error that failed the run, once there is one."""

    def __init__(self, path: Path, info: dict[str, Any]) -> None:
        self.path = path
        self._info = info
        self._lock = threading.Lock()
        self.failure: BaseException | None = None

    def get(self, key: str) -> Any:
        return self._info[key]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._info)

    def update(self, **fields: Any) -> None:
        """Add ``fields`` and rewrite the file. A full disk is a
        :class:`~loopwise.record.errors.DiskFullError` naming it, and fails the run."""
        try:
            with self._lock:
                self._info.update(fields)
                atomic_write_json(self.path, self._info)
        except OSError as exc:
            if not is_disk_full(exc) or isinstance(exc, DiskFullError):
                raise
            full = DiskFullError(self.path)
            self.fail(full)
            raise full from exc

    def fail(self, exc: BaseException) -> None:
        """A write failed (a full disk, most often): mark the run ``failed`` with that error,
        best effort. Only the first failure counts; any thread may call this."""
        with self._lock:
            if self.failure is not None:
                return
            self.failure = exc
            self._info.update(status="failed", error=str(exc))
            try:
                atomic_write_json(self.path, self._info)
            except OSError:  # the disk may be too full for a temp file: over the old one then
                with contextlib.suppress(OSError, ValueError):
                    write_in_place(self.path, json_bytes(self._info))
