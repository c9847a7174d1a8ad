"""Fixed-name checkpoint files (``last_checkpoint.pth``, ``last_weights.pt``,
``<name>_best_model.pth``) kept by the same storage as the ``CheckpointManager``'s files: written
through ``store`` (temp file, inline XXH3-128 hash, fsync, ``os.replace``), listed in
the folder's ``manifest.json`` (the same ``ManifestEntry`` format) and verified against it on
every load.

A fixed name is written over, so a save has a commit window: the new files are staged (written,
fsynced, hashed), the manifest lists each new hash *and* the hash of what is on disk now
(``previous``), then the files take their names. After a crash at any point the file on disk
matches one of the two. The ``previous`` hash is the one of the file actually on disk (known from
the last commit or the last verified load, else hashed), never an older manifest's claim: so any
number of crashes inside the window leaves the intact file loadable.

The replaced file of each name is kept as ``.spare-<name>`` and the next save writes over it
(recycling, as the ``CheckpointManager`` does: overwriting allocated blocks is about twice as fast
as filling new ones on thin-provisioned disks); it is never read.

``save_later`` takes the same save off the calling thread: the objects' tensors are copied into
reused CPU buffers (``TensorSnapshot``) at once, the write, fsyncs and commit run on a background
thread, one save at a time: each one is committed (or its error raised, as it is) before the next
one starts; ``wait()`` blocks until the last one is on disk. ``write_later`` queues another small
write (a Workflow's ``history.csv`` and ``run.json``) on the same thread, after the saves before
it: one ordered background writer, so a checkpoint is never on disk before the files it follows;
``copy_later`` does the same for any other write of a state's copy.

A file without a recorded hash (manifest missing, unreadable, or not listing it) is
*unverifiable*: :class:`UnverifiedCheckpointError`, unless the caller opts in with
``allow_unverified=True``.

Another name of a file that another manifest owns (fit's hard-linked
``<name>_checkpoint_<epoch>.pth``, the ``CheckpointManager``'s file under a reference name) is
listed by :meth:`NamedFiles.adopt` as a reference to it (``source``), never with a second copy of
its hash: :meth:`NamedFiles.check` verifies it against the owner's entry in the owner's manifest.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loopwise.checkpoint.errors import (
    CorruptCheckpointError,
    DiskFullError,
    UnverifiedCheckpointError,
)
from loopwise.checkpoint.folder import MANIFEST
from loopwise.checkpoint.hashing import StoredFile, check_file
from loopwise.checkpoint.manifest import (
    ManifestEntry,
    ManifestError,
    read_manifest,
    write_manifest,
)
from loopwise.checkpoint.snapshot import BackgroundWriter, TensorSnapshot
from loopwise.checkpoint.store import StagedFile, load_file, stage_file

__all__ = ["NamedFiles", "verify_if_listed"]


class NamedFiles:
    """The fixed-name checkpoint files of ``folder``, with their hashes in its manifest."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.manifest = self.folder / MANIFEST
        self._on_disk: dict[str, StoredFile] = {}  # what this process knows each file holds
        # one manifest update at a time: save_later's thread and adopt/forget on the caller's
        self._manifest_lock = threading.Lock()
        self._writer: BackgroundWriter | None = None  # save_later's thread, made on first use
        self._snapshot = TensorSnapshot()

    # -- reading the manifest --------------------------------------------------------------
    def entries(self) -> dict[str, ManifestEntry]:
        """The manifest's entries by file name; ManifestError when missing or corrupt."""
        return {e.file: e for e in read_manifest(self.manifest)}

    def _entries_or_empty(self) -> dict[str, ManifestEntry]:
        try:
            return self.entries()
        except ManifestError:
            return {}

    def entry(self, name: str) -> ManifestEntry | None:
        return self._entries_or_empty().get(name)

    def exists(self, name: str) -> bool:
        return (self.folder / name).is_file()

    # -- checking and loading ----------------------------------------------------------------
    def check(self, name: str) -> StoredFile:
        """The recorded content that ``name`` matches; :class:`CorruptCheckpointError` when it
        matches none, :class:`UnverifiedCheckpointError` when nothing is recorded for it."""
        path = self.folder / name
        try:
            entry = self.entries().get(name)
        except ManifestError as exc:
            raise UnverifiedCheckpointError(
                f"{path} cannot be verified: {exc}, so its hash is unknown") from exc
        if entry is None:
            if not path.is_file():
                raise CorruptCheckpointError(path, "the file is missing")
            raise UnverifiedCheckpointError(
                f"{path} cannot be verified: {self.manifest} does not list it")
        if entry.source is not None:
            return self._check_source(name, entry.source)
        problems = []
        for expected in entry.accepted:
            problem = check_file(path, expected)
            if problem is None:
                self._on_disk[name] = expected
                return expected
            problems.append(problem)
        raise CorruptCheckpointError(path, "; ".join(dict.fromkeys(problems)))

    def load(self, name: str, *, map_location: Any = "cpu", allow_pickle: bool = False,
             allow_unverified: bool = False) -> tuple[Any, bool]:
        """``torch.load`` the file ``name`` after checking its hash; return it and whether it
        was verified (False only with ``allow_unverified=True`` for an unverifiable file)."""
        verified = True
        try:
            self.check(name)
        except UnverifiedCheckpointError:
            if not allow_unverified:
                raise
            verified = False
        return load_file(self.folder / name, map_location=map_location,
                         allow_pickle=allow_pickle), verified

    # -- writing -----------------------------------------------------------------------------
    def save(self, files: Mapping[str, Any], *, step: int,
             metrics: Mapping[str, float] | None = None) -> dict[str, StoredFile]:
        """Write every ``name -> object`` of ``files`` (``torch.save``) under its fixed name,
        crash-safely (see the module doc); return what each now holds."""
        staged: list[StagedFile] = []
        try:
            for name, obj in files.items():
                staged.append(stage_file(self.folder / name, obj, reuse=self._reusable(name)))
        except DiskFullError as exc:
            for item in staged:
                item.discard()
            raise DiskFullError(f"{exc}; {self._intact(list(files))}") from exc
        except BaseException:
            for item in staged:
                item.discard()
            raise
        try:
            with self._manifest_lock:
                self._list_staged(staged, step=step, metrics=metrics)
        except BaseException:
            for item in staged:
                item.discard()
            raise
        for item in staged:
            self._keep_as_spare(item.path)
            self._on_disk[item.path.name] = item.commit()
        return {item.path.name: item.stored for item in staged}

    def _list_staged(self, staged: list[StagedFile], *, step: int,
                     metrics: Mapping[str, float] | None) -> None:
        """The manifest with each staged file's new hash and what is on disk now."""
        entries = self._entries_or_empty()
        now = time.time()
        seq = max((e.seq for e in entries.values()), default=0) + 1
        for item in staged:
            name = item.path.name
            previous = self._current(name, entries.get(name))
            entries[name] = ManifestEntry(
                file=name, step=step, size=item.stored.size, hash=item.stored.hash,
                algorithm=item.stored.algorithm, time=now, seq=seq,
                metrics=dict(metrics or {}),
                previous=None if previous is None else {
                    "size": previous.size, "hash": previous.hash,
                    "algorithm": previous.algorithm})
        write_manifest(self.manifest, sorted(entries.values(), key=lambda e: e.file))

    def save_later(self, files: Mapping[str, Any], *, step: int,
                   metrics: Mapping[str, float] | None = None,
                   before: Callable[[], None] | None = None) -> None:
        """``save(files)`` on a background thread. The save before it is committed first (its
        error, e.g. ``DiskFullError``, raised here as it is); then the tensors of ``files`` are
        copied (the caller may change them as soon as this returns) and the write starts.
        ``before``: called on that thread first (e.g. ``run.flush``: the record reaches the disk
        before the checkpoint that follows it). ``wait()`` for the file to be on disk."""
        if not isinstance(files, Mapping):
            raise TypeError(f"files must be a mapping of file name -> object, got "
                            f"{type(files).__name__}")
        if before is not None and not callable(before):
            raise TypeError(f"before must be a callable or None, got {type(before).__name__}")
        kept = None if metrics is None else dict(metrics)

        def write(copies: dict[str, Any]) -> None:
            if before is not None:
                before()
            self.save(copies, step=step, metrics=kept)

        self.copy_later(dict(files), write)

    def copy_later(self, state: Any, job: Callable[[Any], object]) -> None:
        """Wait for the writes in flight (raising the first error, as it is), copy the tensors
        of ``state`` into this object's reused CPU buffers, then run ``job(copy)`` on the save
        thread, after the writes before it."""
        if not callable(job):
            raise TypeError(f"job must be a callable taking the copied state, got "
                            f"{type(job).__name__}")
        writer = self._background()
        writer.wait()  # the snapshot's buffers are free again: the last write is done
        copy = self._snapshot.take(state)
        writer.queue(lambda: job(copy))

    def write_later(self, job: Callable[[], None]) -> None:
        """Run ``job`` (a crash-safe write of another file) on the save thread after the saves
        and writes queued before it, without waiting; its error is raised by the next
        ``save_later``, ``wait()`` or ``close()``."""
        if not callable(job):
            raise TypeError(f"job must be a callable taking no arguments, got "
                            f"{type(job).__name__}")
        self._background().queue(job)

    def _background(self) -> BackgroundWriter:
        if self._writer is None:
            self._writer = BackgroundWriter("loopwise-named-checkpoint", wrap_errors=False)
        return self._writer

    def wait(self) -> None:
        """Block until the last ``save_later`` (and ``write_later``) is on disk; raise the first
        error as it is."""
        if self._writer is not None:
            self._writer.wait()

    def close(self) -> None:
        """``wait()``, then stop the background thread (a later ``save_later`` starts a new
        one). Idempotent."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def _spare(self, name: str) -> Path:
        return self.folder / f".spare-{name}"

    def _reusable(self, name: str) -> Path:
        """The spare to write over, never a second name of the live file (a crash between
        linking the spare and the rename leaves it so)."""
        spare, live = self._spare(name), self.folder / name
        with contextlib.suppress(OSError):
            if live.exists() and os.path.samefile(spare, live):
                spare.unlink()
        return spare

    def _keep_as_spare(self, path: Path) -> None:
        """Keep the replaced file's blocks as the next save's spare (recycling, as the
        ``CheckpointManager`` does): a second name for it until the rename drops the first."""
        spare = self._spare(path.name)
        with contextlib.suppress(OSError):  # no hard links here: the file is simply replaced
            spare.unlink(missing_ok=True)
            os.link(path, spare)

    def adopt(self, name: str, source: str | Path, *, step: int) -> None:
        """List ``name`` as another name of ``source`` (a file written, hashed and listed by
        another manifest, e.g. a hard link to a ``CheckpointManager`` file): the entry refers to
        the owner's, which alone holds the size and hash."""
        owner = Path(source)
        if owner.is_absolute():
            owner = Path(os.path.relpath(owner, self.folder))
        with self._manifest_lock:
            entries = self._entries_or_empty()
            seq = max((e.seq for e in entries.values()), default=0) + 1
            entries[name] = ManifestEntry(file=name, step=step, size=0, hash="", algorithm="",
                                          time=time.time(), seq=seq, source=owner.as_posix())
            write_manifest(self.manifest, sorted(entries.values(), key=lambda e: e.file))
        self._on_disk.pop(name, None)

    def _check_source(self, name: str, source: str) -> StoredFile:
        """Verify ``name`` against the entry of the file it is another name of, in that
        file's own manifest."""
        path, owner = self.folder / name, self.folder / source
        try:
            entry = NamedFiles(owner.parent).entries().get(owner.name)
        except ManifestError as exc:
            raise UnverifiedCheckpointError(
                f"{path} cannot be verified: it is another name of {owner}, and {exc}") from exc
        if entry is None:
            raise UnverifiedCheckpointError(
                f"{path} cannot be verified: it is another name of {owner}, which "
                f"{owner.parent / MANIFEST} no longer lists")
        problem = check_file(path, entry.stored)
        if problem is not None:
            raise CorruptCheckpointError(path, problem)
        self._on_disk[name] = entry.stored
        return entry.stored

    def forget(self, names: list[str]) -> None:
        """Drop ``names`` from the manifest (their files were removed)."""
        with self._manifest_lock:
            entries = self._entries_or_empty()
            if any(n in entries for n in names):
                kept = [e for n, e in entries.items() if n not in names]
                write_manifest(self.manifest, sorted(kept, key=lambda e: e.file))
        for name in names:
            self._on_disk.pop(name, None)

    def _current(self, name: str, entry: ManifestEntry | None) -> StoredFile | None:
        """What the file ``name`` holds on disk now (None when it is missing or unknown)."""
        known = self._on_disk.get(name)
        if known is not None or not (self.folder / name).is_file() or entry is None:
            return known
        with contextlib.suppress(CorruptCheckpointError, UnverifiedCheckpointError):
            return self.check(name)
        return None

    def _intact(self, names: list[str]) -> str:
        present = [n for n in names if (self.folder / n).is_file()]
        if not present:
            return "there is no previous checkpoint here"
        entry = self.entry(present[0])
        when = f" (step {entry.step})" if entry is not None else ""
        shown = ", ".join(str(self.folder / n) for n in present)
        return f"the previous checkpoint {shown}{when} is intact; free some space and resume"

    def remove_leftovers(self, names: list[str]) -> None:
        """Temp files of writes that a crash interrupted (never complete files)."""
        for name in names:
            for leftover in self.folder.glob(f".{name}.*.tmp"):
                leftover.unlink(missing_ok=True)


def verify_if_listed(path: str | Path) -> None:
    """Check ``path`` against the ``manifest.json`` beside it when that manifest lists it (a
    named file or a ``CheckpointManager`` file); nothing to check otherwise."""
    target = Path(path)
    files = NamedFiles(target.parent)
    if files.manifest.is_file() and files.entry(target.name) is not None:
        files.check(target.name)
