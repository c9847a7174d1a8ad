"""Reading kept checkpoints back: the newest good one of a list (every file verified against its
manifest entry; a bad one is reported and the one before it tried; never a silent fresh start),
a check of them all, and the verified backup copy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loopwise.checkpoint.folder import FORMAT, MANIFEST, CheckpointCheck, is_payload
from loopwise.checkpoint.hashing import check_file
from loopwise.checkpoint.manifest import ManifestEntry, write_manifest
from loopwise.checkpoint.store import (
    CheckpointError,
    CorruptCheckpointError,
    copy_file,
    load_file,
)

Report = Callable[[str, str, dict[str, Any]], None]


def first_good(directory: Path, entries: Sequence[ManifestEntry], *, map_location: Any,
               allow_pickle: bool, report: Report) -> tuple[dict[str, Any], ManifestEntry] | None:
    """The state of the first entry (in the given order) whose file verifies, with the entry;
    None when there is none; :class:`CheckpointError` listing them when every one is bad."""
    problems = []
    for entry in entries:
        path = directory / entry.file
        try:
            payload = load_file(path, expected=entry.stored, map_location=map_location,
                                allow_pickle=allow_pickle)
        except CorruptCheckpointError as exc:
            problems.append(str(exc))
            report("checkpoint_corrupt", f"{exc}; falling back to the previous good checkpoint",
                   {"file": entry.file, "step": entry.step})
            continue
        if not is_payload(payload):
            raise CheckpointError(f"{path} is not a loopwise checkpoint (no {FORMAT!r} key)")
        state: dict[str, Any] = payload["state"]
        return state, entry
    if problems:
        raise CheckpointError("no usable checkpoint in " f"{directory}: " + "; ".join(problems))
    return None


def verify_entries(directory: Path, entries: Sequence[ManifestEntry], *,
                   report: Report) -> list[CheckpointCheck]:
    """Check the size and hash of every entry's file (bad ones are also reported)."""
    results = []
    for entry in entries:
        path = directory / entry.file
        problem = check_file(path, entry.stored)
        if problem is not None:
            report("checkpoint_corrupt", f"checkpoint {path} is unusable: {problem}",
                   {"file": entry.file, "step": entry.step})
        results.append(CheckpointCheck(path=path, step=entry.step, problem=problem))
    return results


def backup_copy(path: Path, backup_dir: Path, entry: ManifestEntry, *, monitor: str | None,
                mode: str) -> None:
    """Copy the checkpoint ``path`` to ``backup_dir`` (verified by its hash), with a manifest of
    its own; the backup's older checkpoints go."""
    target = backup_dir / entry.file
    stored = copy_file(path, target)
    if stored.hash != entry.hash:
        raise CheckpointError(f"backup copy {target} does not match {path}; disk trouble?")
    write_manifest(backup_dir / MANIFEST, [entry], monitor=monitor, mode=mode)
    for old in backup_dir.glob("checkpoint-step*.pt"):
        if old.name != entry.file:
            old.unlink(missing_ok=True)
