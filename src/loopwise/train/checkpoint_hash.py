"""Hashing checkpoint bytes: the streaming hash that runs while a file is written, and the
size + hash checks done before a file is loaded (part of storage, see ``checkpoint_store``).

SHA-256 (see ``docs/workflow.md`` for the choice). :class:`ChasingHasher` reads, on a helper
thread, what :class:`HashingWriter` has already handed to the OS, so the hash overlaps the
write and the fsync.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HASH_ALGORITHM = "sha256"
SMALL_WRITE = 1 << 16  # smaller writes are coalesced before they reach the OS
READ_CHUNK = 1 << 22


@dataclass(frozen=True)
class StoredFile:
    """What storage knows about one written file."""

    size: int
    hash: str
    algorithm: str = HASH_ALGORITHM


class ChasingHasher:
    """Hashes a file on a helper thread while it is being written, reading what the writer has
    already handed to the OS (from the page cache). The training-side writer never copies or
    waits for the hash; the hash only costs time if it is still behind when the fsync ends.
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._hasher = new_hasher()
        self._written = 0
        self._done = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="loopwise-hash", daemon=True)
        self._thread.start()

    def advance(self, nbytes: int) -> None:
        with self._cond:
            self._written += nbytes
            if self._written % READ_CHUNK < nbytes:  # crossed a chunk boundary
                self._cond.notify()

    def finish(self) -> str:
        with self._cond:
            self._done = True
            self._cond.notify()
        self._thread.join()
        os.close(self._fd)
        if self._error is not None:
            raise self._error
        return str(self._hasher.hexdigest())

    def _run(self) -> None:
        pos = 0
        try:
            while True:
                with self._cond:
                    while self._written - pos < READ_CHUNK and not self._done:
                        self._cond.wait()
                    target = self._written
                    if pos >= target:
                        return
                while pos < target:
                    chunk = os.pread(self._fd, min(READ_CHUNK, target - pos), pos)
                    if not chunk:
                        raise OSError(f"file shrank while hashing it (at byte {pos})")
                    self._hasher.update(chunk)
                    pos += len(chunk)
        except BaseException as exc:  # handed to finish(), which re-raises it
            self._error = exc


class HashingWriter:
    """A write-only file object over a raw fd: small writes are coalesced, big ones go straight
    to the OS; a :class:`ChasingHasher` hashes the bytes behind the writer."""

    def __init__(self, fd: int, hasher: ChasingHasher) -> None:
        self._fd = fd
        self._hasher = hasher
        self._small = bytearray()
        self.size = 0

    def _write_all(self, view: memoryview) -> None:
        while view.nbytes:
            done = os.write(self._fd, view)
            view = view[done:]
            self._hasher.advance(done)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        n = view.nbytes
        if n < SMALL_WRITE:
            self._small += view
            if len(self._small) >= SMALL_WRITE:
                self.flush()
        else:
            self.flush()
            self._write_all(view)
        self.size += n
        return n

    def flush(self) -> None:
        if self._small:
            self._write_all(memoryview(self._small))
            self._small = bytearray()


def new_hasher() -> Any:
    return hashlib.new(HASH_ALGORITHM)


def digest_file(path: str | os.PathLike[str]) -> StoredFile:
    """Size and hash of a file on disk."""
    hasher = new_hasher()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return StoredFile(size=size, hash=hasher.hexdigest())


def check_file(path: Path, expected: StoredFile) -> str | None:
    """None when ``path`` matches ``expected``, else what is wrong with it."""
    if not path.is_file():
        return "the file is missing"
    size = path.stat().st_size
    if size == 0:
        return f"the file is empty (expected {expected.size} bytes)"
    if size != expected.size:
        return f"the file has {size} bytes, expected {expected.size} (truncated or overwritten)"
    if expected.algorithm not in hashlib.algorithms_available:
        return f"its hash algorithm {expected.algorithm!r} is not available here"
    hasher = hashlib.new(expected.algorithm)
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            hasher.update(chunk)
    if hasher.hexdigest() != expected.hash:
        return f"its {expected.algorithm} hash does not match the manifest (the bytes changed)"
    return None

