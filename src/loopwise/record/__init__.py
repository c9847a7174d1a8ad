"""The run record: run folder, embedded store and readers. Imports no torch."""

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
