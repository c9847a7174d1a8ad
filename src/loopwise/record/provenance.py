"""What a run records about where it came from: host, process, command, versions, git commit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from loopwise.utils.isotime import iso

__all__ = ["git_commit", "iso", "new_run_info", "package_version", "process_identity",
           "process_start_time"]


def package_version(dist: str) -> str | None:
    """The installed version of ``dist`` (never imports it), or None."""
    from importlib import metadata  # here: importing it costs a reader's start-up ~50 ms

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit(cwd: Path) -> str | None:
    """``git rev-parse HEAD`` in ``cwd``, or None outside a repository or without git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (psutil), so a reused PID is not mistaken for it."""
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # psutil missing or the process gone: no start time to compare
        return None


def process_identity() -> dict[str, Any]:
    """The writer's host, PID and PID start time (what a reader checks for ``crashed``)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_start": process_start_time(pid)}


def new_run_info(name: str, now: float) -> dict[str, Any]:
    """The first content of ``run.json`` for a run named ``name`` started at ``now``."""
    return {
        "id": uuid.uuid4().hex,
        "name": name,
        "status": "running",
        "start_time": now,
        "started_at": iso(now),
        "end_time": None,
        "heartbeat": now,
        **process_identity(),
        "argv": list(sys.argv),
        "cwd": os.getcwd(),
        "python": sys.version.split()[0],
        "torch": package_version("torch"),
        "loopwise": package_version("loopwise"),
        "git_commit": git_commit(Path.cwd()),
        "global_step": 0,
        "resumes": [],
    }


def pid_alive(pid: int, start: float | None) -> bool:
    """Whether process ``pid`` (started at ``start``, when known) is still alive on this host:
    a reused PID (another start time) or a zombie is not."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a core dependency
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return start is None or abs(proc.create_time() - start) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
