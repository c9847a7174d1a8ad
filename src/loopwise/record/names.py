"""Run names: generated ones sort by time; given ones follow one simple, safe rule."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from loopwise.record.folder import LOCK_FILE, RUN_FILE

NAME_RULE = (
    "a run name may hold letters, digits, '-', '_' and '.', at most 100 characters, "
    "and may not be '.' or '..' or contain a path separator"
)
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def validate_run_name(name: object, *, what: str = "name") -> str:
    """Return ``name`` if it is a valid run name, else raise ``ValueError`` stating the rule."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__}; {NAME_RULE}")
    if not _NAME_RE.fullmatch(name) or name in (".", "..") or ".." in name:
        raise ValueError(f"invalid run {what} {name!r}: {NAME_RULE}")
    return name


def generate_run_name(now: float | None = None) -> str:
    """A name that sorts by creation time: ``YYYYmmdd-HHMMSS-<6 hex>`` (UTC)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(3)}"


_UNBORN_FILES = (LOCK_FILE,)  # what Run.create makes before run.json


def is_unborn(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` is a run whose creation was cut short (a kill between the folder and
    its ``run.json``): a folder holding nothing but the writer lock or a half-written
    ``run.json`` temp file. Creating a run of that name reuses it."""
    path = Path(folder)
    if not path.is_dir() or path.is_symlink() or (path / RUN_FILE).exists():
        return False
    return all(entry.name in _UNBORN_FILES or (entry.name.startswith(f".{RUN_FILE}.")
                                               and entry.name.endswith(".tmp"))
               for entry in path.iterdir())


def make_run_folder(root: str | os.PathLike[str], name: str | None, *,
                    clock: Callable[[], float] = time.time) -> Path:
    """Create ``root/name`` exclusively (so two runs never share a folder) and return its
    absolute path; a generated name when ``name`` is None. An unborn run of that name
    (:func:`is_unborn`) is reused: the caller takes its lock and checks again."""
    root_path = Path(root).absolute()  # a later chdir must not move the run
    try:
        root_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the runs folder {root_path}: {exc.strerror}; "
                      "pass root= a folder you can write to") from exc
    if name is not None:
        validate_run_name(name)
        path = root_path / name
        try:
            path.mkdir()
        except FileExistsError:
            if is_unborn(path):
                for entry in path.iterdir():  # a torn run.json temp file from the cut creation
                    if entry.name.endswith(".tmp"):
                        entry.unlink()
                return path
            raise FileExistsError(
                f"a run named {name!r} already exists in {root_path}; choose another name, "
                "or leave name=None for a generated one"
            ) from None
        return path
    for _ in range(100):
        path = root_path / generate_run_name(clock())
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not find a free run name in {root_path}")  # pragma: no cover
