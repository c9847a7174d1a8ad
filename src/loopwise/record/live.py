"""This process's open runs, so that a reader in the same process sees what they logged.

A loop hands its values to the run's store thread, which writes them every
``flush_interval`` (a pass end does not wait for it: the SQLite commit stays off the
training thread). A :class:`~loopwise.record.reader.RunReader` opened in the process that is
writing the run first asks that writer to write what is queued (:func:`catch_up`), so that
reading a run right after a loop, before it is closed, finds every step; a reader in another
process sees the record as committed (within ``flush_interval`` of the loop).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import ClassVar, Protocol


class _Flushable(Protocol):
    def catch_up(self) -> None: ...


class LiveRuns:
    """The run writers open in this process, by their folder's real path (weak references:
    a writer that is gone is forgotten). Class-level state, as ``atexit``'s: one per process."""

    _writers: ClassVar[weakref.WeakValueDictionary[str, _Flushable]] = (
        weakref.WeakValueDictionary())
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def add(cls, path: str | os.PathLike[str], writer: _Flushable) -> None:
        with cls._lock:
            cls._writers[os.path.realpath(path)] = writer

    @classmethod
    def remove(cls, path: str | os.PathLike[str]) -> None:
        with cls._lock:
            cls._writers.pop(os.path.realpath(path), None)

    @classmethod
    def find(cls, path: str | os.PathLike[str]) -> _Flushable | None:
        if not cls._writers:  # the common case (a CLI, a view): no open run here
            return None
        with cls._lock:
            return cls._writers.get(os.path.realpath(path))


def catch_up(path: str | os.PathLike[str]) -> None:
    """Have this process's open writer of the run in ``path``, if any, write what is queued."""
    writer = LiveRuns.find(path)
    if writer is not None:
        writer.catch_up()
