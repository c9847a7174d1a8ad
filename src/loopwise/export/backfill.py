"""Mirror a run after the fact: read its record and feed it through an exporter.

``loopwise export RUN --to tensorboard DIR`` and ``--to mlflow URI`` call :func:`backfill` with
the same exporter classes a live run uses, so a backfilled run looks like a live-mirrored one:
config, every series, events at the step they refer to, system samples, artifacts, and the
final status (a crashed run closes as ``FAILED`` in MLflow, never left ``RUNNING``).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Mapping
from typing import Any

from loopwise.export.base import DeliveryStats, Exporter, RunLink
from loopwise.record.reader import RunReader

CHUNK = 50_000  # points handed over at once; the exporter's queue is drained between chunks


def _step_clock(reader: RunReader, keys: list[str]) -> tuple[list[float], list[int]]:
    """(times, steps) of the run's densest series: which global step a wall time falls in."""
    best: tuple[list[float], list[int]] = ([], [])
    for key in keys:
        series = reader.series(key)
        if len(series) > len(best[0]):
            pairs = sorted(zip(series.times, series.steps, strict=True))
            best = ([p[0] for p in pairs], [p[1] for p in pairs])
    return best


def backfill(run_path: str | os.PathLike[str], exporter: Exporter, *,
             drain_timeout: float = 300.0) -> DeliveryStats:
    """Send the whole record of the finished (or crashed) run at ``run_path`` to ``exporter``
    and close it with the run's status. Returns the exporter's delivery counts.

    Between chunks of ``CHUNK`` points the exporter's queue is drained (at most
    ``drain_timeout`` seconds each), so a long run is never dropped by the bounded queue."""
    if not isinstance(exporter, Exporter):
        raise TypeError(f"exporter must be a loopwise exporter (TensorBoardExporter, "
                        f"MLflowExporter...), got {type(exporter).__name__}")
    reader = RunReader(run_path)
    info: Mapping[str, Any] = reader.info
    status = str(info.get("status"))
    if status == "running":
        raise ValueError(f"run {reader.path.name!r} is still running; mirror it live with "
                         "run.add_exporter(...) or wait until it ends")
    final_step = int(info.get("global_step") or 0)
    exporter.link = RunLink(path=reader.path, info=lambda: info, global_step=lambda: final_step)
    exporter.set_config(reader.config())
    keys = reader.keys()
    for key in keys:
        series = reader.series(key)
        for i in range(0, len(series), CHUNK):
            exporter.log_columns({key: (series.steps[i:i + CHUNK], series.times[i:i + CHUNK],
                                        series.values[i:i + CHUNK])})
            exporter.flush(drain_timeout)
    times, steps = _step_clock(reader, keys)
    for event in reader.events():
        at = None if event.data is None else event.data.get("step")
        if type(at) is not int:
            idx = bisect.bisect_right(times, event.time) - 1
            at = steps[idx] if idx >= 0 else 0
        exporter.log_event(event.kind, event.message, level=event.level, data=event.data,
                           wall_time=event.time, step=at)
    sample: dict[str, float] = {}
    sample_time: float | None = None
    for n, (t, name, value) in enumerate(reader.system()):
        if sample_time is not None and (t != sample_time or name in sample):
            exporter.log_system(sample, wall_time=sample_time)
            sample = {}
        sample_time = t
        sample[name] = value
        if n % CHUNK == CHUNK - 1:
            exporter.flush(drain_timeout)
    if sample and sample_time is not None:
        exporter.log_system(sample, wall_time=sample_time)
    error = info.get("error")
    exporter.close(status, error=error if isinstance(error, str) else None)
    return exporter.stats()
