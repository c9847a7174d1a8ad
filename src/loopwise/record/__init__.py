"""The run record: run folder, embedded store and readers. Imports no torch.

Public names are imported lazily (as in :mod:`loopwise`): importing one submodule, such as
``loopwise.record.folder``, does not import the reader, the writer and numpy with it, so the
command line's view verbs start quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopwise.utils.lazy import lazy_names

if TYPE_CHECKING:
    from loopwise.record.errors import CorruptRecordError, DiskFullError
    from loopwise.record.lock import RunLockedError
    from loopwise.record.names import generate_run_name, validate_run_name
    from loopwise.record.reader import Event, RunInfo, RunReader, list_runs
    from loopwise.record.run import STATUSES, Run
    from loopwise.record.series import Series, downsample
    from loopwise.utils.atomic import (
        UnsafeTargetError,
        atomic_write_bytes,
        atomic_write_json,
        atomic_write_text,
    )

_PUBLIC = {
    "STATUSES": "loopwise.record.run",
    "CorruptRecordError": "loopwise.record.errors",
    "DiskFullError": "loopwise.record.errors",
    "Event": "loopwise.record.reader",
    "Run": "loopwise.record.run",
    "RunInfo": "loopwise.record.reader",
    "RunLockedError": "loopwise.record.lock",
    "RunReader": "loopwise.record.reader",
    "Series": "loopwise.record.series",
    "UnsafeTargetError": "loopwise.utils.atomic",
    "atomic_write_bytes": "loopwise.utils.atomic",
    "atomic_write_json": "loopwise.utils.atomic",
    "atomic_write_text": "loopwise.utils.atomic",
    "downsample": "loopwise.record.series",
    "generate_run_name": "loopwise.record.names",
    "list_runs": "loopwise.record.reader",
    "validate_run_name": "loopwise.record.names",
}

__all__ = [
    "STATUSES",
    "CorruptRecordError",
    "DiskFullError",
    "Event",
    "Run",
    "RunInfo",
    "RunLockedError",
    "RunReader",
    "Series",
    "UnsafeTargetError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "downsample",
    "generate_run_name",
    "list_runs",
    "validate_run_name",
]


__getattr__, __dir__ = lazy_names(__name__, _PUBLIC, listed=__all__)
