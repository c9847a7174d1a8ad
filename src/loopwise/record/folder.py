"""The run folder's files: the one place that names them (``docs/record.md``).

Every other module, in ``record/`` and above it, refers to a run folder's files through these
names, never through a literal."""

from __future__ import annotations

import os
from pathlib import Path

RUN_FILE = "run.json"  # the run's info and status (record.runfile)
CONFIG_FILE = "config.json"  # the run's config (Run.log_config)
STORE_FILE = "store.sqlite"  # the embedded store (record.storefile); -wal/-shm beside it
LOG_FILE = "log.jsonl"  # events and epoch metrics (record.jsonlog); .1, .2 ... once rotated
LOCK_FILE = "writer.lock"  # the writer lock (record.lock)
REPORT_FILE = "report.html"  # the HTML report (view.report)
IMAGES_DIR = "images"  # the run's images, <sha256>.png each (record.media)

__all__ = ["CONFIG_FILE", "LOCK_FILE", "LOG_FILE", "REPORT_FILE", "RUN_FILE", "STORE_FILE",
           "is_run_folder"]


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """``path`` is a loopwise run folder: it holds a ``run.json`` file."""
    return (Path(path) / RUN_FILE).is_file()
