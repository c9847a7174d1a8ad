"""Helpers of the view tests: runs with known contents, the headless browser (Debian's
chromium driven by playwright), the dashboard server as a subprocess, and the artifacts folder
(env LOOPWISE_ARTIFACTS, else the test's tmp folder) where screenshots are kept."""

from __future__ import annotations

import math
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from loopwise.record import Run

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking"]
HOSTILE = "<img src=x onerror=alert(1)>"
# the pixels of a canvas that are not blank (transparent or white)
INK = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 0; i < d.length; i += 4)
    if (d[i+3] > 0 && (d[i] < 250 || d[i+1] < 250 || d[i+2] < 250)) n++; return n; }"""
SRC = str(Path(__file__).resolve().parents[2] / "src")


def make_run(root: Path, name: str, *, steps: int = 300, epochs: int = 3, seed: int = 0,
             config: dict[str, Any] | None = None, spike_at: int | None = None,
             extra_key: str | None = None) -> Path:
    """A finished run: a noisy decaying ``loss`` per step, epoch summaries (loss, val_loss,
    accuracy), system samples and a checkpoint event per epoch."""
    rng = random.Random(seed)
    t0 = 1_700_000_000.0
    per_epoch = steps // epochs
    with Run.create(root, name, config=config or {"lr": 0.1, "batch_size": 32}) as run:
        for step in range(1, steps + 1):
            loss = 2.0 * math.exp(-step / (steps / 3)) + 0.1 + rng.random() * 0.02
            if step == spike_at:
                loss = 25.0
            values = {"loss": loss}
            if extra_key is not None:
                values[extra_key] = rng.random()
            run.log_scalars(values, step=step, wall_time=t0 + step)
            if step % per_epoch == 0:
                epoch = step // per_epoch
                run.log_epoch(epoch, {"loss": loss, "val_loss": loss * 1.1,
                                      "accuracy": 0.5 + 0.1 * epoch}, step=step)
                run.log_system({"cpu_pct": 40.0 + epoch, "proc_rss_mib": 500.0,
                                "steps_per_s": 20.0, "data_wait_pct": 3.0},
                               wall_time=t0 + step)
                run.log_event("checkpoint_saved", f"checkpoint of epoch {epoch}",
                              data={"step": step})
    return root / name


def _need_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("LOOPWISE_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{CHROMIUM} is missing and LOOPWISE_REQUIRE_SERVERS=1: apt-get install "
                    "chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Any, *, timeout: float = 15.0, what: str = "condition",
               page: Any = None) -> Any:
    """Poll ``check()`` until it returns something truthy (no fixed sleeps as assertions).
    With ``page``, wait through playwright, so that its events (requests) are delivered."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if page is not None:
            page.wait_for_timeout(100)
        else:
            time.sleep(0.1)


class Server:
    def __init__(self, root: Path, token: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "loopwise", "ui", str(root), "--port", str(self.port)]
        if token:
            cmd += ["--token", token]
        env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"loopwise ui exited: {self.proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                urllib.request.urlopen(self.url + "/openapi.json", timeout=1).read()
                return True
            except urllib.error.HTTPError:
                return True  # it answers (401 when a token is set)
            except OSError:
                return False

        try:
            wait_until(up, timeout=30, what="the dashboard server")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
