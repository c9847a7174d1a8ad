"""loopwise's one ISO 8601 timestamp format: local time to the millisecond, exactly as
``datetime.fromtimestamp(ts).isoformat(timespec="milliseconds")`` writes it
(``2026-05-01T12:00:03.120``): the time is rounded to the microsecond, then the microseconds
are truncated to milliseconds (``.9996`` s reads ``.999``, never the next second).

Used by ``run.json`` (``started_at``, ``ended_at``), ``log.jsonl`` (``time``) and the monitor's
CSV (``timestamp``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


def iso(ts: float) -> str:
    """Unix time ``ts`` as local ISO 8601 with milliseconds."""
    return iso_stamps((ts,))[0]


def iso_stamps(wall_times: Sequence[float]) -> list[str]:
    """:func:`iso` of each time; the date-and-second part is formatted once per second, so a
    long column of times costs little more than the millisecond digits."""
    seconds: dict[int, str] = {}
    out = []
    for wall in wall_times:
        sec, micro = divmod(round(wall * 1_000_000), 1_000_000)
        head = seconds.get(sec)
        if head is None:
            head = seconds[sec] = datetime.fromtimestamp(sec).isoformat(timespec="seconds")
        out.append(f"{head}.{micro // 1000:03d}")
    return out
