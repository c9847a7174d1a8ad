"""The one check before a view reads a file of a run folder: the file must be the run's own.

A run's file (``run.json``, ``config.json``, ``store.sqlite`` and its ``-wal``/``-shm``,
``log.jsonl``...) that is a symbolic link leading out of the run folder is refused with a
:class:`~loopwise.record.errors.CorruptRecordError` naming it: a view (``show``, ``report``,
``doctor``, the dashboard) never serves a file from elsewhere on the machine through a run.
"""

from __future__ import annotations

import os
from pathlib import Path

from loopwise.record.errors import CorruptRecordError

LINK_HINT = ("loopwise reads only a run folder's own files; replace the link with the file "
             "itself")


def run_file(run_path: str | os.PathLike[str], name: str) -> Path:
    """``run_path / name``, refused when it is a symbolic link out of the run folder."""
    file = Path(run_path) / name
    if file.is_symlink():
        real = Path(os.path.realpath(file))
        if Path(os.path.realpath(run_path)) not in real.parents:
            raise CorruptRecordError(file, f"a symbolic link to {real}, outside the run folder",
                                     hint=LINK_HINT)
    return file
