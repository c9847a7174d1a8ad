"""What travels through an exporter's queue, and how queued items merge into one delivery."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loopwise.record.follow import EventRow, Increment, Sample
from loopwise.record.media_read import hand_over
from loopwise.record.recorder import ColumnData

__all__ = ["EventRow", "Payload", "Sample", "feed", "merge_items", "points_of"]


@dataclass
class Payload:
    """Everything one round of the exporter thread delivers."""

    columns: dict[str, ColumnData] = field(default_factory=dict)
    events: list[EventRow] = field(default_factory=list)
    system: list[Sample] = field(default_factory=list)
    calls: list[Callable[[], None]] = field(default_factory=list)


def points_of(columns: Mapping[str, ColumnData]) -> int:
    return sum(len(c[0]) for c in columns.values())


def merge_items(items: Sequence[tuple[str, Any, int]]) -> Payload:
    """Merge queued ``(kind, payload, n)`` items: columns of one key are concatenated in queue
    order (a key seen once keeps its columns as they came, without copying)."""
    out = Payload()
    copied: set[str] = set()
    for kind, payload, _ in items:
        if kind == "columns":
            for key, col in payload.items():
                have = out.columns.get(key)
                if have is None:
                    out.columns[key] = col
                    continue
                if key not in copied:
                    have = (array("q", have[0]), array("d", have[1]), array("d", have[2]))
                    out.columns[key] = have
                    copied.add(key)
                have[0].extend(col[0])  # type: ignore[attr-defined]
                have[1].extend(col[1])  # type: ignore[attr-defined]
                have[2].extend(col[2])  # type: ignore[attr-defined]
        elif kind == "events":
            out.events.extend(payload)
        elif kind == "system":
            out.system.extend(payload)
        else:
            out.calls.extend(payload)
    return out


def feed(exporter: Any, increment: Increment) -> int:
    """Hand an increment to an exporter (its ``log_columns``, ``log_event``, ``log_system``,
    ``log_histogram``, ``log_image``, ``log_text``); returns the points handed over."""
    if increment.columns:
        exporter.log_columns(increment.columns)
    for row in increment.events:
        exporter.log_event(row.kind, row.message, level=row.level, data=row.data,
                           wall_time=row.time, step=row.step)
    for sample in increment.system:
        exporter.log_system(sample.values, wall_time=sample.time)
    for table, media_row in increment.media:
        hand_over(exporter, table, media_row, increment.run_path, wall_time=media_row[2])
    return increment.points
