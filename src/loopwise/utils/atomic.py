"""Crash-safe whole-file writes: temp file in the same folder, fsync, ``os.replace``, fsync of the
folder. A reader sees either the old file or the new one, never a torn mix, even after a power cut.

Only a regular file (or nothing) is ever replaced: a target that is a symlink, a directory, a
FIFO, a socket or a device node is refused with :class:`UnsafeTargetError` before anything is
written (``loopwise export RUN /dev/full`` must not turn a device node into a regular file).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class UnsafeTargetError(ValueError):
    """A whole-file write was asked to replace something that is not a regular file."""


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def check_target(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path when it is absent or a regular file; otherwise
    :class:`UnsafeTargetError` naming it, what it is and what to do (symlinks not followed)."""
    target = Path(path)
    try:
        mode = os.lstat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there: the write says why
        return target
    kind = _kind(mode)
    if kind is not None:
        raise UnsafeTargetError(
            f"refusing to write {target}: it is {kind}, and loopwise only replaces regular "
            "files; give the path of a new or regular file (or remove what is there)")
    return target


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so that a rename inside it survives a crash (no-op where unsupported)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(os.fspath(path), flags)
    except OSError:  # Windows cannot open directories; nothing to do there.
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (e.g. certain network mounts) refuse fsync on directories
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (``path``: absent or a regular file)."""
    atomic_write_chunks(path, (data,))


def atomic_write_chunks(path: str | os.PathLike[str], chunks: Iterable[bytes]) -> None:
    """:func:`atomic_write_bytes` of data made piece by piece (a large export is never held
    whole in memory): nothing is at ``path`` until every chunk is written and synced."""
    target = check_target(path)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    # O_EXCL: never reuse a file; mode 0o666 lets the umask decide (mkstemp would force 0600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        check_target(target)  # something put there while we wrote is not replaced either
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically and durably."""
    atomic_write_bytes(path, text.encode("utf-8"))


def json_bytes(obj: Any, *, indent: int = 2) -> bytes:
    """``obj`` as the JSON text loopwise writes (strict: NaN refused), UTF-8."""
    return (json.dumps(obj, indent=indent, sort_keys=False, allow_nan=False) + "\n").encode()


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> None:
    """Serialise ``obj`` as JSON (strict: NaN refused; pass measured values through
    :func:`loopwise.utils.jsonsafe.json_safe` first) and write it atomically."""
    atomic_write_bytes(path, json_bytes(obj, indent=indent))


def write_in_place(path: str | os.PathLike[str], data: bytes) -> bool:
    """Write ``data`` over the regular file ``path`` in place, only when it fits in the blocks
    the file already has (so it needs no free space); False when it does not fit. Not
    crash-safe like :func:`atomic_write_bytes`: the last resort when the disk is too full for
    a temp file (a run's ``failed`` status in ``run.json``)."""
    target = check_target(path)
    fd = os.open(target, os.O_WRONLY | getattr(os, "O_BINARY", 0))
    try:
        if len(data) > os.fstat(fd).st_blocks * 512:
            return False
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
        os.fsync(fd)
        return True
    finally:
        os.close(fd)
