"""The layout of a ``CheckpointManager`` folder: ``checkpoint-step<step>.pt`` files, each a
payload ``{"loopwise_checkpoint": 1, "step", "seq", "time", "metrics", "state"}``, listed by
``manifest.json``; the records that describe kept files (:class:`CheckpointInfo`,
:class:`CheckpointCheck`); and rebuilding a missing or corrupt manifest from the files.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwise.checkpoint.errors import CheckpointError, CorruptCheckpointError
from loopwise.checkpoint.hashing import digest_file
from loopwise.checkpoint.manifest import ManifestEntry, ManifestError
from loopwise.checkpoint.policy import clean_metrics
from loopwise.checkpoint.store import load_file

MANIFEST = "manifest.json"
FILE_RE = re.compile(r"^checkpoint-step(\d+)\.pt$")
TMP_GLOB = ".checkpoint-step*.tmp"  # an interrupted write; never a complete checkpoint
SPARE = ".spare-checkpoint"  # a dropped checkpoint file kept for the next save to write over
FORMAT = "loopwise_checkpoint"  # the key that marks a payload as a loopwise checkpoint


def file_name(step: int) -> str:
    return f"checkpoint-step{step:08d}.pt"


def make_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents); a clear error when it cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create checkpoint folder {folder}: {exc.strerror}; "
                      "pass a folder you can write to") from exc
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"checkpoint folder {folder} is not writable; "
                              "pass a folder you can write to")


def is_payload(payload: object) -> bool:
    return isinstance(payload, dict) and FORMAT in payload


@dataclass(frozen=True)
class CheckpointInfo:
    """One kept checkpoint as the manifest describes it."""

    path: Path
    step: int
    metrics: dict[str, float]
    size: int
    hash: str
    algorithm: str
    time: float

    @classmethod
    def of(cls, directory: Path, entry: ManifestEntry) -> CheckpointInfo:
        return cls(path=directory / entry.file, step=entry.step, metrics=dict(entry.metrics),
                   size=entry.size, hash=entry.hash, algorithm=entry.algorithm, time=entry.time)


@dataclass(frozen=True)
class CheckpointCheck:
    """The result of verifying one checkpoint: ``problem`` is None when it is good."""

    path: Path
    step: int
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


Report = Callable[[str, str, dict[str, Any]], None]


def rebuild_manifest(directory: Path, why: ManifestError, *, report: Report,
                     write: Callable[[list[ManifestEntry]], None],
                     now: float | None = None) -> list[ManifestEntry]:
    """No usable manifest: rebuild it from the checkpoint files that load cleanly.

    The corrupt manifest is kept aside as ``manifest.json.corrupt-<time>`` (``now``, Unix
    seconds; default the current time); each file left out
    and the rebuild itself are reported through ``report(kind, message, data)``.
    """
    manifest = directory / MANIFEST
    files = sorted(p for p in directory.iterdir() if FILE_RE.match(p.name))
    if not files:
        if manifest.exists():
            raise CheckpointError(f"{why}; no checkpoint files next to it. Delete it to "
                                  "start this folder afresh") from why
        return []
    if manifest.exists():
        stamp = int(time.time() if now is None else now)
        kept_as = manifest.with_name(f"{MANIFEST}.corrupt-{stamp}")
        n = 1
        while kept_as.exists():  # a second rebuild within the second keeps both copies
            n += 1
            kept_as = manifest.with_name(f"{MANIFEST}.corrupt-{stamp}-{n}")
        os.replace(manifest, kept_as)  # kept as it was, for inspection
    entries: list[ManifestEntry] = []
    for path in files:
        try:
            payload = load_file(path)
            if not is_payload(payload):
                raise CorruptCheckpointError(path, "not a loopwise checkpoint")
        except CheckpointError as exc:
            report("checkpoint_corrupt", f"{exc}; left out of the rebuilt manifest",
                   {"file": path.name})
            continue
        stored = digest_file(path)
        entries.append(ManifestEntry(
            file=path.name, step=int(payload["step"]), size=stored.size, hash=stored.hash,
            algorithm=stored.algorithm, time=float(payload["time"]), seq=int(payload["seq"]),
            metrics=clean_metrics(payload.get("metrics"))))
    write(entries)
    report("manifest_rebuilt",
           f"{why}; rebuilt it from {len(entries)} of {len(files)} checkpoint files",
           {"files": [e.file for e in entries]})
    return entries
