"""The record's own errors: a record file that cannot be read (:class:`CorruptRecordError`) and
a disk that cannot take more (:class:`DiskFullError`). Both name the file and say what to do.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

_DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None))
                              if e is not None)
_SQLITE_FULL = 13  # SQLite reports ENOSPC (and max_page_count) as SQLITE_FULL


class CorruptRecordError(ValueError):
    """A file of a run folder (``run.json``, ``config.json``, ``store.sqlite``...) is not what
    loopwise wrote: not JSON, not an object, not a SQLite database. ``path`` is the file."""

    def __init__(self, path: str | os.PathLike[str], reason: str, *, hint: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path} is corrupt ({reason}); {hint}")


class DiskFullError(OSError):
    """No space left (or the quota is used up) on the device holding ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        super().__init__(f"no space left on the device holding {self.path}; free space and "
                         "resume (what was written before is kept and readable)")
        self.errno = errno.ENOSPC
        self.filename = os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.args[0])


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full: ``ENOSPC``/``EDQUOT`` from
    the OS, ``SQLITE_FULL`` from SQLite."""
    if isinstance(exc, DiskFullError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _DISK_FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int):
            return (code & 0xFF) == _SQLITE_FULL
        return "database or disk is full" in str(exc)
    return False


def load_json_object(path: str | os.PathLike[str], *, hint: str) -> dict[str, Any]:
    """The JSON object in ``path``; :class:`CorruptRecordError` (naming the file, the problem
    and ``hint``, what to do) when it is not UTF-8 JSON or not an object."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise CorruptRecordError(file, f"not UTF-8 text: {exc.reason}", hint=hint) from exc
    except json.JSONDecodeError as exc:
        raise CorruptRecordError(file, f"not JSON: {exc.msg} at line {exc.lineno} column "
                                 f"{exc.colno}", hint=hint) from exc
    except (ValueError, RecursionError) as exc:  # an int of over 4300 digits, deep nesting
        raise CorruptRecordError(file, f"not JSON loopwise can read: {exc}"[:300],
                                 hint=hint) from exc
    if not isinstance(data, dict):
        raise CorruptRecordError(file, f"it holds a JSON {_json_kind(data)}, not an object",
                                 hint=hint)
    return data


def _json_kind(value: object) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)
