"""How checkpoint files are written and read (the storage half; policy lives in ``checkpoint``).

* ``save_file(path, obj)`` (``stage_file`` + ``commit``) streams ``torch.save`` into a temp
  file in the same folder while a second thread hashes the bytes already written (SHA-256, see
  ``docs/workflow.md`` for the choice), fsyncs it, then ``os.replace``-s it into place and fsyncs
  the folder (``loopwise.record.atomic.fsync_dir``). The hash overlaps the write and the fsync.
* ``load_file(path, expected=...)`` checks size and hash before ``torch.load(weights_only=True)``.
  Loading arbitrary pickles needs ``allow_pickle=True`` and warns.
* ``Manifest``: the JSON list of entries (file, size, hash, step, metrics, time) of one folder.
* ``TensorSnapshot`` copies a nested state into reused CPU buffers; ``BackgroundWriter`` runs one
  write at a time on a background thread and re-raises its error on the next call.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from loopwise.record.atomic import atomic_write_json, fsync_dir

HASH_ALGORITHM = "sha256"
MANIFEST_VERSION = 1
_SMALL_WRITE = 1 << 16  # smaller writes are coalesced before they reach the OS
_READ_CHUNK = 1 << 22


class CheckpointError(Exception):
    """A checkpoint could not be written, read or restored."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file is missing, truncated, or does not match its recorded hash."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"checkpoint {path} is unusable: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class StoredFile:
    """What storage knows about one written file."""

    size: int
    hash: str
    algorithm: str = HASH_ALGORITHM


class _ChasingHasher:
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
            if self._written % _READ_CHUNK < nbytes:  # crossed a chunk boundary
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
                    while self._written - pos < _READ_CHUNK and not self._done:
                        self._cond.wait()
                    target = self._written
                    if pos >= target:
                        return
                while pos < target:
                    chunk = os.pread(self._fd, min(_READ_CHUNK, target - pos), pos)
                    if not chunk:
                        raise OSError(f"file shrank while hashing it (at byte {pos})")
                    self._hasher.update(chunk)
                    pos += len(chunk)
        except BaseException as exc:  # handed to finish(), which re-raises it
            self._error = exc


class _HashingWriter:
    """A write-only file object over a raw fd: small writes are coalesced, big ones go straight
    to the OS; a :class:`_ChasingHasher` hashes the bytes behind the writer."""

    def __init__(self, fd: int, hasher: _ChasingHasher) -> None:
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
        if n < _SMALL_WRITE:
            self._small += view
            if len(self._small) >= _SMALL_WRITE:
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
        while chunk := fh.read(_READ_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return StoredFile(size=size, hash=hasher.hexdigest())


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


def _stage(path: Path, fill: Callable[[IO[bytes]], None]) -> StagedFile:
    """Write a temp file next to ``path`` through ``fill``, hashing it meanwhile, and fsync it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    hasher: _ChasingHasher | None = None
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the mode torch.save would (umask)
            os.fchmod(fd, 0o666 & ~_umask())
        hasher = _ChasingHasher(tmp)
        writer = _HashingWriter(fd, hasher)
        fill(writer)  # type: ignore[arg-type]
        writer.flush()
        os.fsync(fd)
        digest, hasher = hasher.finish(), None
        os.close(fd)
        fd = -1
    except BaseException:
        if hasher is not None:
            with contextlib.suppress(BaseException):
                hasher.finish()
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return StagedFile(path=path, tmp=Path(tmp), stored=StoredFile(size=writer.size, hash=digest))


def stage_file(path: str | os.PathLike[str], obj: Any) -> StagedFile:
    """``torch.save(obj)`` into a durable temp file next to ``path``; ``commit()`` to finish."""
    return _stage(Path(path), lambda fh: torch.save(obj, fh))


def save_file(path: str | os.PathLike[str], obj: Any) -> StoredFile:
    """``torch.save(obj)`` to ``path`` atomically and durably; return its size and hash."""
    return stage_file(path, obj).commit()


def copy_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> StoredFile:
    """Copy ``src`` to ``dst`` atomically (used for backups); return the copy's size and hash."""
    target = Path(dst)

    def fill(fh: IO[bytes]) -> None:
        with open(src, "rb") as source:
            shutil.copyfileobj(source, fh, _READ_CHUNK)

    return _stage(target, fill).commit()


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
        while chunk := fh.read(_READ_CHUNK):
            hasher.update(chunk)
    if hasher.hexdigest() != expected.hash:
        return f"its {expected.algorithm} hash does not match the manifest (the bytes changed)"
    return None


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


# -- manifest --------------------------------------------------------------------------------


@dataclass
class ManifestEntry:
    """One checkpoint in a folder's manifest."""

    file: str
    step: int
    size: int
    hash: str
    algorithm: str
    time: float
    seq: int
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def stored(self) -> StoredFile:
        return StoredFile(size=self.size, hash=self.hash, algorithm=self.algorithm)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ManifestEntry:
        return cls(
            file=str(data["file"]), step=int(data["step"]), size=int(data["size"]),
            hash=str(data["hash"]), algorithm=str(data["algorithm"]), time=float(data["time"]),
            seq=int(data["seq"]),
            metrics={str(k): float(v) for k, v in dict(data.get("metrics") or {}).items()},
        )


class ManifestError(CheckpointError):
    """The manifest is missing or unreadable."""


def read_manifest(path: Path) -> list[ManifestEntry]:
    """Entries of a manifest file; :class:`ManifestError` when missing or corrupt."""
    if not path.is_file():
        raise ManifestError(f"{path} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != MANIFEST_VERSION:
            raise ManifestError(f"{path} has version {data.get('version')!r}, "
                                f"expected {MANIFEST_VERSION}")
        return [ManifestEntry.from_json(item) for item in data["entries"]]
    except ManifestError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path} is corrupt ({type(exc).__name__}: {exc})") from exc


def write_manifest(path: Path, entries: list[ManifestEntry], **extra: Any) -> None:
    """Write the manifest atomically (temp + fsync + replace + folder fsync)."""
    payload = {"version": MANIFEST_VERSION, **extra,
               "entries": [entry.to_json() for entry in entries]}
    atomic_write_json(path, _finite_json(payload))


def _finite_json(obj: Any) -> Any:
    """NaN/inf metric values become strings so the manifest stays strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_json(v) for v in obj]
    return obj


# -- async snapshot and writer ----------------------------------------------------------------


class TensorSnapshot:
    """Copies the tensors of a nested state into CPU buffers that are reused between calls.

    The copy is what the training thread pays for an async save; buffers are keyed by position
    in the structure and reallocated only when a shape or dtype changes. CUDA tensors go to
    pinned buffers with ``non_blocking`` copies and one synchronisation at the end.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    @property
    def nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self._buffers.values())

    def take(self, state: Any) -> Any:
        used: set[str] = set()
        cuda = [False]
        result = self._copy(state, "", used, cuda)
        if cuda[0]:
            torch.cuda.synchronize()
        for key in list(self._buffers):
            if key not in used:
                del self._buffers[key]
        return result

    def _copy(self, obj: Any, where: str, used: set[str], cuda: list[bool]) -> Any:
        if isinstance(obj, torch.Tensor):
            return self._copy_tensor(obj, where, used, cuda)
        if isinstance(obj, Mapping):
            items = [(k, self._copy(v, f"{where}/{k!r}", used, cuda)) for k, v in obj.items()]
            if type(obj) is dict or not isinstance(obj, dict):
                return dict(items)
            out = copy.copy(obj)  # OrderedDict and other dict subclasses keep their type
            out.clear()
            out.update(items)
            return out
        if isinstance(obj, list):
            return [self._copy(v, f"{where}[{i}]", used, cuda) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            items2 = [self._copy(v, f"{where}({i})", used, cuda) for i, v in enumerate(obj)]
            return type(obj)(*items2) if hasattr(obj, "_fields") else tuple(items2)
        return copy.deepcopy(obj)

    def _copy_tensor(self, tensor: torch.Tensor, where: str, used: set[str],
                     cuda: list[bool]) -> torch.Tensor:
        src = tensor.detach()
        if src.is_sparse or src.layout != torch.strided:
            return src.to("cpu", copy=True)
        buf = self._buffers.get(where)
        if buf is None or buf.shape != src.shape or buf.dtype != src.dtype:
            pin = src.is_cuda
            buf = torch.empty(src.shape, dtype=src.dtype, device="cpu", pin_memory=pin)
            self._buffers[where] = buf
        used.add(where)
        if src.is_cuda:
            cuda[0] = True
            buf.copy_(src, non_blocking=True)
        elif not _memcpy(buf, src):
            buf.copy_(src)
        return buf


def _memcpy(dst: torch.Tensor, src: torch.Tensor) -> bool:
    """Copy a contiguous CPU tensor's bytes with one thread; False when that does not apply.

    torch's parallel ``copy_`` stalls badly when the other cores are busy (2-core machine under
    load: 0.4 s instead of 0.06 s for 512 MB); one thread already runs at memory bandwidth.
    """
    if not src.is_contiguous() or src.numel() == 0 or src.is_conj() or src.is_neg() \
            or src.is_quantized:
        return False
    try:
        np.copyto(dst.reshape(-1).view(torch.uint8).numpy(),
                  src.reshape(-1).view(torch.uint8).numpy())
    except (RuntimeError, TypeError):
        return False
    return True


class BackgroundWriter:
    """Runs one job at a time on a worker thread; a failed job raises on the next call.

    The thread is not a daemon: an interpreter exiting normally first finishes the write.
    """

    def __init__(self, name: str = "loopwise-checkpoint") -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: Future[None] | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def busy(self) -> bool:
        return self._pending is not None and not self._pending.done()

    def submit(self, job: Callable[[], None]) -> None:
        """Wait for the job in flight (raising its error), then start ``job``."""
        if self._closed:
            raise RuntimeError("the checkpoint writer is closed; create a new CheckpointManager")
        self.wait()
        with self._lock:
            self._pending = self._pool.submit(job)

    def wait(self) -> None:
        """Block until the job in flight is done; re-raise its exception, if any."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            exc = pending.exception()
            if exc is not None:
                raise CheckpointError(f"the background checkpoint write failed: {exc}") from exc

    def close(self) -> None:
        """Wait for the last job (raising its error) and stop the thread. Idempotent."""
        if self._closed:
            return
        try:
            self.wait()
        finally:
            self._closed = True
            self._pool.shutdown(wait=True)
