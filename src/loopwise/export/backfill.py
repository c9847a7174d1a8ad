"""Mirror a run after the fact: read its record and feed it through an exporter.

``loopwise export RUN --to tensorboard DIR`` and ``--to mlflow URI`` call :func:`backfill` with
the same exporter classes a live run uses, so a backfilled run looks like a live-mirrored one:
config, every series, events at the step they refer to, system samples, artifacts, and the
final status (a crashed run closes as ``FAILED`` in MLflow, never left ``RUNNING``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from loopwise.export.base import DeliveryStats, Exporter, RunLink, check_seconds
from loopwise.export.payload import feed
from loopwise.record.follow import Follower, Increment
from loopwise.record.intact import DAMAGED_EVENT, IntactReader, intact
from loopwise.record.reader import RunReader


def backfill(run_path: str | os.PathLike[str], exporter: Exporter, *,
             drain_timeout: float = 300.0, connect_timeout: float = 20.0) -> DeliveryStats:
    """Send the whole record of the finished (or crashed) run at ``run_path`` to ``exporter``
    and close it with the run's status. Returns the exporter's delivery counts.

    The record is read by the follower a live mirror uses (:mod:`loopwise.record.follow`),
    half the exporter's ``max_pending`` points at a time: the next increment is read while the
    exporter delivers the previous one, and handed over once it has taken it (waiting at most
    ``drain_timeout`` seconds each), so a long run is never dropped by the bounded queue.

    The backend is reached first (the config is delivered): a target that does not take it
    within ``connect_timeout`` seconds is a :class:`ConnectionError` saying why, and nothing
    else is sent. What the exporter says while delivering (``exporter_failed`` ...) goes to its
    stream once the backfill is done."""
    if not isinstance(exporter, Exporter):
        raise TypeError(f"exporter must be a loopwise exporter (TensorBoardExporter, "
                        f"MLflowExporter...), got {type(exporter).__name__}")
    reader = intact(RunReader(run_path))  # a damaged series is left out, the others sent
    info: Mapping[str, Any] = reader.info
    status = str(info.get("status"))
    if status == "running":
        raise ValueError(f"run {reader.path.name!r} is still running; mirror it live with "
                         "run.add_exporter(...) or wait until it ends")
    check_seconds(connect_timeout, "connect_timeout")
    notes: list[str] = []
    follower = Follower(reader.path)
    exporter.link = RunLink(path=reader.path, info=lambda: info,
                            global_step=lambda: follower.step,
                            record_event=lambda kind, message, level, data: notes.append(message))
    exporter.set_config(reader.config())
    if not exporter.flush(connect_timeout):
        follower.close()
        exporter.close_timeout = 0.0  # stop retrying now
        exporter.close_delivery(status, None, report=False)
        why = (exporter.last_error or "no answer").strip().splitlines()[0]
        raise ConnectionError(f"{type(exporter).__name__} could not reach {exporter.backend} "
                              f"within {connect_timeout:g} s: {why}")
    limit = max(1, exporter.max_pending // 2)  # two increments queued never overflow it
    try:
        while True:
            increment = follower.read(limit)  # while the exporter delivers the previous one
            exporter.wait_taken(drain_timeout)
            if not feed(exporter, _without(increment, reader)):
                break
        exporter.flush(drain_timeout)
    finally:
        follower.close()
    for damage in reader.damage:  # said in the mirror too
        exporter.log_event(DAMAGED_EVENT, str(damage), level="error")
    error = info.get("error")
    exporter.close(status, error=error if isinstance(error, str) else None)
    for message in notes:
        print(f"loopwise: {message}", file=exporter.stream)
    return exporter.stats()


def _without(increment: Increment, reader: IntactReader) -> Increment:
    """``increment`` without the parts of the record that failed their checksum."""
    if reader.damage:
        keys = set(reader.keys())
        increment.columns = {k: c for k, c in increment.columns.items() if k in keys}
        parts = {d.part for d in reader.damage}
        if "events" in parts:
            increment.events = []
        if "system samples" in parts:
            increment.system = []
    return increment
