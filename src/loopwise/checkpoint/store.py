"""How checkpoint files are written and read (the storage half; policy lives in ``checkpoint``).

* ``save_file(path, obj)`` (``stage_file`` + ``commit``) streams ``torch.save`` into a temp
  file in the same folder, hashing the bytes as they are written (XXH3-128, see
  ``docs/workflow.md`` for the choice), fsyncs it, then ``os.replace``-s it into place and fsyncs
  the folder (``loopwise.utils.atomic.fsync_dir``).
* ``load_file(path, expected=...)`` checks size and hash before ``torch.load(weights_only=True)``.
  Loading arbitrary pickles needs ``allow_pickle=True`` and warns.

The rest of storage lives beside this module and is re-exported from here:
``checkpoint_errors`` (the exceptions), ``checkpoint_hash`` (the hashing writer, ``StoredFile``,
``digest_file``, ``check_file``), ``checkpoint_manifest`` (``Manifest``: the JSON list of
entries (file, size, hash, step, metrics, time) of one folder) and ``checkpoint_async``
(``TensorSnapshot`` copies a nested state into reused CPU buffers; ``BackgroundWriter`` runs one
write at a time on a background thread and re-raises its error on the next call).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch

from loopwise.checkpoint.errors import (
    CheckpointError,
    CorruptCheckpointError,
    DiskFullError,
    UnverifiedCheckpointError,
)
from loopwise.checkpoint.hashing import (
    HASH_ALGORITHM,
    READ_CHUNK,
    HashingWriter,
    StoredFile,
    check_file,
    digest_file,
    new_hasher,
)
from loopwise.checkpoint.manifest import (
    MANIFEST_VERSION,
    ManifestEntry,
    ManifestError,
    read_manifest,
    write_manifest,
)
from loopwise.checkpoint.snapshot import BackgroundWriter, TensorSnapshot
from loopwise.utils.atomic import check_target, fsync_dir

__all__ = [
    "HASH_ALGORITHM", "MANIFEST_VERSION", "BackgroundWriter", "CheckpointError",
    "CorruptCheckpointError", "DiskFullError", "ManifestEntry", "ManifestError", "StagedFile",
    "StoredFile", "TensorSnapshot", "UnverifiedCheckpointError", "check_file", "copy_file",
    "digest_file", "load_file", "new_hasher", "read_manifest", "save_file", "stage_file",
    "write_manifest",
]


@dataclass
class StagedFile:
    """A fully written, fsynced and hashed temp file waiting to replace ``path``.

    Splitting the write lets a caller record the new hash (e.g. in a manifest) before the file
    takes its final name, so a crash between the two never leaves a file its manifest disowns.
    """

    path: Path
    tmp: Path
    stored: StoredFile
    done: bool = False

    def commit(self) -> StoredFile:
        """``os.replace`` the temp file into place and fsync the folder."""
        if self.done:
            raise RuntimeError(f"{self.path} was already committed or discarded")
        self.done = True
        try:
            check_target(self.path)  # a symlink or FIFO put there meanwhile is not replaced
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)
            raise
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)
        return self.stored

    def discard(self) -> None:
        if not self.done:
            self.done = True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)


def _umask() -> int:
    """The process umask, read without changing it (Linux); 0o022 elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _take_over(old: Path, tmp: str) -> bool:
    """Move ``old`` onto the temp name ``tmp`` (its blocks are then reused); False if missing
    or not a regular file (a symlink there would be written through)."""
    if not os.path.isfile(old) or os.path.islink(old):
        return False
    try:
        os.replace(old, tmp)
    except FileNotFoundError:
        return False
    return True


def _stage(path: Path, fill: Callable[[IO[bytes]], None], reuse: Path | None = None
           ) -> StagedFile:
    """Write a temp file next to ``path`` through ``fill``, hashing it meanwhile, and fsync it.

    ``reuse``: a file to write over instead of a new one (it becomes the temp file; missing is
    fine). Overwriting allocated blocks and cached pages costs about half of filling new ones
    on thin-provisioned disks and VMs that hand freed memory back to the host. A ``path`` that
    is not a regular file (symlink, FIFO, device) is refused (``UnsafeTargetError``).
    """
    check_target(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if reuse is not None and _take_over(reuse, tmp):
            os.close(fd)
            fd = -1
            fd = os.open(tmp, os.O_WRONLY)  # no O_TRUNC: written over, cut to size below
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the mode torch.save would (umask)
            os.fchmod(fd, 0o666 & ~_umask())
        writer = HashingWriter(fd)
        try:
            fill(writer)  # type: ignore[arg-type]
            writer.flush()
            os.ftruncate(fd, writer.size)
            os.fsync(fd)
        except Exception as exc:
            full = writer.error if writer.error is not None else exc
            if isinstance(full, OSError) and full.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(
                    f"the disk is full: writing {path.name} in {path.parent} failed "
                    f"({os.strerror(full.errno)}); the partial file was removed"
                ) from exc
            raise
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.close(fd)
    return StagedFile(path=path, tmp=Path(tmp), stored=writer.stored())


def stage_file(path: str | os.PathLike[str], obj: Any, *,
               reuse: str | os.PathLike[str] | None = None) -> StagedFile:
    """``torch.save(obj)`` into a durable temp file next to ``path``; ``commit()`` to finish.
    ``reuse`` names a file to write over (see ``save_file``)."""
    target = Path(path)
    spare: Path | None = None
    if reuse is not None:
        if not isinstance(reuse, (str, os.PathLike)):
            raise TypeError(f"reuse must be a file path or None, got {type(reuse).__name__}")
        spare = Path(reuse)
        if spare.parent.resolve() != target.parent.resolve():
            raise ValueError(f"reuse must be a file in the folder of {target} (it is renamed "
                             f"into place there), got {spare}")
    return _stage(target, lambda fh: torch.save(obj, fh), spare)


def save_file(path: str | os.PathLike[str], obj: Any, *,
              reuse: str | os.PathLike[str] | None = None) -> StoredFile:
    """``torch.save(obj)`` to ``path`` atomically and durably; return its size and hash.

    ``reuse``: a file in the same folder that is no longer needed (e.g. a checkpoint that fell
    out of the keep set); it is written over (and cut to size) instead of a new file, then takes
    ``path``'s name. Missing is fine.
    """
    return stage_file(path, obj, reuse=reuse).commit()


def copy_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> StoredFile:
    """Copy ``src`` to ``dst`` atomically (used for backups); return the copy's size and hash."""
    target = Path(dst)

    def fill(fh: IO[bytes]) -> None:
        with open(src, "rb") as source:
            shutil.copyfileobj(source, fh, READ_CHUNK)

    return _stage(target, fill).commit()


def load_file(
    path: str | os.PathLike[str],
    *,
    expected: StoredFile | None = None,
    map_location: Any = "cpu",
    allow_pickle: bool = False,
) -> Any:
    """Verify ``path`` against ``expected`` (when given) and ``torch.load`` it.

    ``weights_only=True`` unless ``allow_pickle=True`` (which warns: a pickle can run code).
    Raises :class:`CorruptCheckpointError` for a bad file.
    """
    target = Path(path)
    if expected is not None:
        problem = check_file(target, expected)
        if problem is not None:
            raise CorruptCheckpointError(target, problem)
    elif not target.is_file():
        raise CorruptCheckpointError(target, "the file is missing")
    elif target.stat().st_size == 0:
        raise CorruptCheckpointError(target, "the file is empty")
    if allow_pickle:
        warnings.warn(
            f"loading {target} with allow_pickle=True: unpickling can run arbitrary code; "
            "only do this for files you trust",
            UserWarning,
            stacklevel=3,
        )
    try:
        return torch.load(target, map_location=map_location, weights_only=not allow_pickle)
    except Exception as exc:
        text = str(exc)
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if not allow_pickle and refused:
            raise CheckpointError(
                f"{target} holds a Python object ({refused.group(1)}) that safe loading "
                "(weights_only=True) refuses. Save plain tensors, numbers, strings, lists and "
                "dicts, or pass allow_pickle=True if you trust the file"
            ) from exc
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        reason = detail.group(1) if detail else (text.strip().splitlines() or [repr(exc)])[0]
        raise CorruptCheckpointError(target, f"torch.load failed: {reason}") from exc

