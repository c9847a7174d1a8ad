"""The checkpoint exceptions, shared by storage (``store``), the manifest, the background
writer and the ``CheckpointManager``; all are importable from ``loopwise.checkpoint.store``."""

from __future__ import annotations

from pathlib import Path


class CheckpointError(Exception):
    """A checkpoint could not be written, read or restored."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file is missing, truncated, or does not match its recorded hash."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"checkpoint {path} is unusable: {problem}")
        self.path = path
        self.problem = problem


class UnverifiedCheckpointError(CheckpointError):
    """A checkpoint file has no recorded hash to check it against (its manifest is missing or
    unreadable, or does not list it)."""


class DiskFullError(CheckpointError):
    """The disk filled up while a checkpoint was written (the partial file was removed)."""
