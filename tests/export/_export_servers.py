"""Real servers for the exporter tests: free loopback ports, start, wait until up, stop by PID.

A server binary missing from the machine skips its tests with the reason, except under
``LOOPWISE_REQUIRE_SERVERS=1`` (CI), where it fails them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

VENV_BIN = Path(__import__("sys").executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(name: str) -> str:
    """The path of ``name`` (the venv's first), or skip / fail when it is not installed."""
    found = VENV_BIN / name
    path = str(found) if found.is_file() else shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install prometheus / pip install the extra)"
        if os.environ.get("LOOPWISE_REQUIRE_SERVERS") == "1":
            pytest.fail(f"LOOPWISE_REQUIRE_SERVERS=1 but {reason}")
        pytest.skip(reason)
    return path


def start(args: list[str], log: Path, *, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, *,
              timeout: float = 120.0) -> bytes:
    """GET ``url`` until it answers 200 (or fail with the server's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{url}: the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return bytes(resp.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server (its process group: a server may fork workers) by its PID."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return bytes(resp.read())


def need(module: str) -> None:
    """Skip when the extra providing ``module`` is not installed; fail under
    ``LOOPWISE_REQUIRE_SERVERS=1``."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        reason = f"{module} is not installed (pip install the loopwise extra)"
        if os.environ.get("LOOPWISE_REQUIRE_SERVERS") == "1":
            pytest.fail(f"LOOPWISE_REQUIRE_SERVERS=1 but {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
