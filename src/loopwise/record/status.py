"""A run's status: as a reader sees it (``running`` with a dead writer reads as ``crashed``), and
as a block that ended gives it (:func:`exit_status`)."""

from __future__ import annotations

import socket
import time
import traceback
from types import TracebackType
from typing import Any

from loopwise.record.provenance import pid_alive

STALE_HEARTBEAT_S = 60.0


def resolve_status(info: dict[str, Any], *, now: float | None = None) -> str:
    """``running`` with a dead writer reads as ``crashed``.

    On this host the writer's PID (and its start time, so a reused PID is not mistaken for it)
    decides; for a run written on another host, a heartbeat older than 60 s does.
    """
    status = str(info.get("status", "crashed"))
    if status != "running":
        return status
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        return "running" if pid_alive(info["pid"], info.get("pid_start")) else "crashed"
    heartbeat = info.get("heartbeat")
    now = time.time() if now is None else now
    if not isinstance(heartbeat, (int, float)) or now - heartbeat > STALE_HEARTBEAT_S:
        return "crashed"
    return "running"


def exit_status(exc_type: type[BaseException] | None, exc: BaseException | None,
                tb: TracebackType | None) -> tuple[str, str | None]:
    """How a block ended, as a run status and, for a failure, the traceback text:
    no exception -> ``finished``; Ctrl-C -> ``interrupted``; anything else -> ``failed``."""
    if exc_type is None:
        return "finished", None
    if issubclass(exc_type, KeyboardInterrupt):
        return "interrupted", None
    return "failed", "".join(traceback.format_exception(exc_type, exc, tb))
