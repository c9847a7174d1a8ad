"""Messages between a training process and its delivery process: tuples, pickled, each framed by
its length (8 bytes, little-endian). Both ends are the same program on the same machine (the
delivery process is started by the training process with its own interpreter)."""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

_HEADER = struct.Struct("<Q")


def send(stream: IO[bytes], message: tuple[Any, ...]) -> None:
    blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(blob)) + blob)
    stream.flush()


def receive(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """The next message, or None at the end of the stream (the other end is gone)."""
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(stream, _HEADER.unpack(header)[0])
    if body is None:
        return None
    message = pickle.loads(body)  # written by our own parent/child process
    if not isinstance(message, tuple) or not message:
        raise ValueError(f"unexpected message from the other process: {message!r}")
    return message


def _read_exactly(stream: IO[bytes], n: int) -> bytes | None:
    parts = []
    while n:
        part = stream.read(n)
        if not part:
            return None
        parts.append(part)
        n -= len(part)
    return b"".join(parts)
