"""The manifest of a checkpoint folder: the JSON list of entries (file, size, hash, step,
metrics, time) that says which files are kept and what their bytes must hash to. Written
atomically (``loopwise.utils.atomic.atomic_write_json``); NaN/inf metrics are written ``null``
and read back as NaN.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loopwise.checkpoint.errors import CheckpointError
from loopwise.checkpoint.hashing import StoredFile
from loopwise.utils.atomic import atomic_write_json
from loopwise.utils.jsonsafe import float_or_nan, json_safe

MANIFEST_VERSION = 1


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
    # a fixed-name file (``checkpoint_named``) between manifest and rename: what is on disk
    previous: dict[str, Any] | None = None

    @property
    def stored(self) -> StoredFile:
        return StoredFile(size=self.size, hash=self.hash, algorithm=self.algorithm)

    @property
    def accepted(self) -> list[StoredFile]:
        """The contents the file may hold: this entry's, and during a commit the one before."""
        out = [self.stored]
        if self.previous:
            out.append(StoredFile(size=int(self.previous["size"]),
                                  hash=str(self.previous["hash"]),
                                  algorithm=str(self.previous["algorithm"])))
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ManifestEntry:
        return cls(
            file=str(data["file"]), step=int(data["step"]), size=int(data["size"]),
            hash=str(data["hash"]), algorithm=str(data["algorithm"]), time=float(data["time"]),
            seq=int(data["seq"]),
            metrics={str(k): float_or_nan(v) for k, v in dict(data.get("metrics") or {}).items()},
            previous=dict(data["previous"]) if data.get("previous") else None,
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
    atomic_write_json(path, json_safe(payload))
