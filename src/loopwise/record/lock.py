"""The writer lock of a run folder: one live process writes a run at a time.

``RunLock.acquire(folder)`` creates ``folder/writer.lock`` with ``O_CREAT | O_EXCL`` and writes
the holder's host, PID and PID start time into it. A lock whose holder is dead (judged as
``resolve_status`` judges a ``running`` run: the PID, and its start time so a reused PID is not
mistaken for the holder) is taken over; a live holder's lock is a :class:`RunLockedError` that
names its PID. ``release()`` removes the file (only while it is still ours).

``Run.create`` and ``Run.reopen`` take the lock and ``Run.close`` releases it, so every entry
point (fit, Workflow, TrainingMonitor, a resumed run) gets it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from loopwise.record.folder import LOCK_FILE
from loopwise.record.provenance import pid_alive, process_identity

FRESH_S = 5.0  # an unreadable lock younger than this may be a holder still writing it


class RunLockedError(RuntimeError):
    """Another live process writes this run."""


class RunLock:
    """The held lock of one run folder."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity
        self.held = True

    @classmethod
    def acquire(cls, folder: str | os.PathLike[str]) -> RunLock:
        """Take the lock of ``folder`` (taking over a dead holder's), or raise
        :class:`RunLockedError` naming the live holder."""
        path = Path(folder) / LOCK_FILE
        identity = process_identity()
        for _ in range(3):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _read(path)
                if _alive(holder, path):
                    raise RunLockedError(_busy_message(Path(folder), holder)) from None
                _take_over(path, holder)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({**identity, "time": time.time()}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            if _read(path).get("pid") == identity["pid"]:
                return cls(path, identity)
        raise RunLockedError(f"could not take the writer lock {path}: another process keeps "
                             "taking it; make sure only one process writes this run")

    def release(self) -> None:
        """Remove the lock file if it is still ours. Idempotent."""
        if not self.held:
            return
        self.held = False
        holder = _read(self.path)
        if holder.get("pid") == self.identity["pid"] and \
                holder.get("host") == self.identity["host"]:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(holder: dict[str, Any], path: Path) -> bool:
    pid = holder.get("pid")
    if not isinstance(pid, int):  # unreadable: a holder may be writing it right now
        try:
            return time.time() - path.stat().st_mtime < FRESH_S
        except FileNotFoundError:
            return False
    if holder.get("host") != socket.gethostname():
        return True  # another host's process: we cannot tell, so it holds the run
    start = holder.get("pid_start")
    return pid_alive(pid, start if isinstance(start, (int, float)) else None)


def _take_over(path: Path, holder: dict[str, Any]) -> None:
    """Remove a dead holder's lock (unless it changed meanwhile)."""
    if _read(path) == holder:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _busy_message(folder: Path, holder: dict[str, Any]) -> str:
    pid = holder.get("pid")
    who = f"process {pid}" if isinstance(pid, int) else "another process"
    host = holder.get("host")
    if isinstance(host, str) and host != socket.gethostname():
        who += f" on host {host}"
    return (f"the run {folder} is in use: {who} is writing it (lock file {folder / LOCK_FILE}). "
            "Wait for it to finish or stop it; nothing was changed")
