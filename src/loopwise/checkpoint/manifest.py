"""The manifest of a checkpoint folder: the JSON list of entries (file, size, hash, step,
metrics, time) that says which files are kept and what their bytes must hash to. An entry with
a ``source`` lists another name of a file another manifest owns (e.g. fit's hard-linked
``<name>_checkpoint_<epoch>.pth`` of a ``CheckpointManager`` file): it holds no size or hash of
its own, the owner's entry is the one record of them (see ``named.NamedFiles.check``). Written
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
    # another name of a file listed in another manifest: that file's path, relative to this
    # folder; its entry there owns the size and hash (this entry has none of its own)
    source: str | None = None

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
        if self.source is not None:
            return {"file": self.file, "step": self.step, "time": self.time, "seq": self.seq,
                    "source": self.source}
        out = asdict(self)
        del out["source"]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ManifestEntry:
        if data.get("source"):
            return cls(file=str(data["file"]), step=int(data["step"]), size=0, hash="",
                       algorithm="", time=float(data["time"]), seq=int(data["seq"]),
                       source=str(data["source"]))
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
