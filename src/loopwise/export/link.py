"""What an exporter knows of the run it mirrors, and what it reports of its delivery."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwise.utils.validate import check_float

EventSink = Callable[[str, str, str, Mapping[str, Any]], None]
"""``(kind, message, level, data)``: how an exporter records its own delivery events."""

DELIVERIES = ("process", "thread")


@dataclass
class RunLink:
    """What an exporter knows of the run it mirrors: its folder, ``run.json``, its global step
    and where to record delivery events. Live runs give all four (:meth:`Exporter.bind_run`);
    a backfill gives the folder and the info of a finished run, and no event sink."""

    path: Path | None = None
    info: Callable[[], Mapping[str, Any]] = dict
    global_step: Callable[[], int] = int
    record_event: EventSink | None = None


@dataclass(frozen=True)
class DeliveryStats:
    """Counts in points (one scalar value, one event, one system sample each)."""

    queued: int
    delivered: int
    dropped: int
    undelivered: int
    failures: int


def check_seconds(value: float, what: str, *, allow_zero: bool = False) -> float:
    return check_float(value, what=what, minimum=0, open_min=not allow_zero, hint="seconds")


def check_delivery(delivery: str, allowed: tuple[str, ...], who: str) -> str:
    if delivery not in DELIVERIES:
        raise ValueError(f"delivery must be 'process' (a process of its own follows the run's "
                         f"record) or 'thread' (a thread in the training process), got "
                         f"{delivery!r}")
    if delivery not in allowed:
        raise ValueError(f"{who} supports delivery={allowed[0]!r} only, got {delivery!r}")
    return delivery
