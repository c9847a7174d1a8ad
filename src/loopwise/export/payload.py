"""What travels through an exporter's queue, and how queued items merge into one delivery."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from loopwise.record.recorder import ColumnData


class EventRow(NamedTuple):
    """One event: wall time (Unix seconds), level, kind, message, JSON data or None, and the
    global step it refers to."""

    time: float
    level: str
    kind: str
    message: str
    data: Mapping[str, Any] | None
    step: int


class Sample(NamedTuple):
    """One system sample: wall time and ``{name: value}``."""

    time: float
    values: Mapping[str, float]


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
