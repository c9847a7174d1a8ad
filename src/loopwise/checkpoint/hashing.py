"""Hashing checkpoint bytes: the hash computed while a file is written, and the size + hash
checks done before a file is loaded (part of storage, see ``store``).

XXH3-128 (see ``docs/workflow.md`` for the choice): the hash guards against accidental damage
(a truncated write, a flipped bit, a half-finished copy), not against an attacker (safe loading
is ``torch.load(weights_only=True)``'s job). At ~13 GB/s it is computed inline on the bytes
:class:`HashingWriter` hands to the OS, ~40 ms for 512 MB. A manifest entry records its
algorithm, so files hashed with any ``hashlib`` algorithm (earlier folders: SHA-256) still verify.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

HASH_ALGORITHM = "xxh3_128"
SMALL_WRITE = 1 << 16  # smaller writes are coalesced before they reach the OS
READ_CHUNK = 1 << 22


@dataclass(frozen=True)
class StoredFile:
    """What storage knows about one written file."""

    size: int
    hash: str
    algorithm: str = HASH_ALGORITHM


def hash_available(algorithm: str) -> bool:
    return algorithm == HASH_ALGORITHM or algorithm in hashlib.algorithms_available


def new_hasher(algorithm: str = HASH_ALGORITHM) -> Any:
    """A fresh hasher (``update``, ``hexdigest``) for ``algorithm``."""
    if algorithm == HASH_ALGORITHM:
        return xxhash.xxh3_128()
    if algorithm in hashlib.algorithms_available:
        return hashlib.new(algorithm)
    raise ValueError(f"unknown hash algorithm {algorithm!r}; use {HASH_ALGORITHM!r} or one "
                     "of hashlib.algorithms_available")


class HashingWriter:
    """A write-only file object over a raw fd that hashes what it writes: small writes are
    coalesced, big ones (tensor storages) go straight to the OS."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._hasher = new_hasher()
        self._small = bytearray()
        self.size = 0
        self.error: OSError | None = None  # the OS's write error (torch reports its own)

    def _write(self, view: memoryview) -> None:
        try:
            self._write_all(view)
        except OSError as exc:
            self.error = exc
            raise

    def _write_all(self, view: memoryview) -> None:
        self._hasher.update(view)
        while view.nbytes:
            done = os.write(self._fd, view)
            view = view[done:]

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        n = view.nbytes
        if n < SMALL_WRITE:
            self._small += view
            if len(self._small) >= SMALL_WRITE:
                self.flush()
        else:
            self.flush()
            self._write(view)
        self.size += n
        return n

    def flush(self) -> None:
        if self._small:
            self._write(memoryview(self._small))
            self._small = bytearray()

    def stored(self) -> StoredFile:
        """Size and hash of everything written (call after the last ``flush``)."""
        return StoredFile(size=self.size, hash=str(self._hasher.hexdigest()))


def _hash_path(path: str | os.PathLike[str], algorithm: str) -> tuple[int, str]:
    hasher = new_hasher(algorithm)
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return size, str(hasher.hexdigest())


def digest_file(path: str | os.PathLike[str]) -> StoredFile:
    """Size and hash of a file on disk."""
    size, digest = _hash_path(path, HASH_ALGORITHM)
    return StoredFile(size=size, hash=digest)


def check_file(path: Path, expected: StoredFile) -> str | None:
    """None when ``path`` matches ``expected``, else what is wrong with it."""
    if not path.is_file():
        return "the file is missing"
    size = path.stat().st_size
    if size == 0:
        return f"the file is empty (expected {expected.size} bytes)"
    if size != expected.size:
        return f"the file has {size} bytes, expected {expected.size} (truncated or overwritten)"
    if not hash_available(expected.algorithm):
        return f"its hash algorithm {expected.algorithm!r} is not available here"
    if _hash_path(path, expected.algorithm)[1] != expected.hash:
        return f"its {expected.algorithm} hash does not match the manifest (the bytes changed)"
    return None
