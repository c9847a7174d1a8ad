"""Launching a scenario script beside this file under real ``torchrun`` (2 processes, gloo on
the CPU) with a timeout, and killing the whole group (SIGKILL) when it asks to be killed; the
scenario as a module (for a single-process reference) and the reference's batches."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from loopwise.distributed.sampler import ResumableSampler

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"
TIMEOUT_S = 120


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", MPLCONFIGDIR=str(tmp))
    env.pop("LOOPWISE_ROOT", None)
    return env


def torchrun(script: str, *args: str, tmp: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "--monitor-interval=0.1", str(HERE / script), *args]
    return subprocess.Popen(cmd, cwd=tmp, env=_env(tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"torchrun did not end within {TIMEOUT_S} s:\n{out[-3000:]}")
    return proc.returncode, out


def kill_when_asked(proc: subprocess.Popen[str], tmp: Path) -> None:
    """Wait for ``tmp/kill_now`` (written by rank 0), then SIGKILL both workers (their PIDs
    in ``tmp/pid{rank}``) and torchrun's process group."""
    deadline = time.monotonic() + TIMEOUT_S
    while not (tmp / "kill_now").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the run never asked to be killed:\n{proc.communicate()[0][-3000:]}")
        time.sleep(0.05)
    for rank in (0, 1):  # the workers run in their own sessions; torchrun in the test's group
        os.kill(int((tmp / f"pid{rank}").read_text()), signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=TIMEOUT_S)


def scenario(name: str) -> ModuleType:
    """The scenario script ``name``.py beside this file, imported (its main() not run)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BothRanks:
    """The batches of one process standing for the two ranks: step i of epoch e is rank 0's
    batch i followed by rank 1's (their shards of ``ResumableSampler``'s order)."""

    def __init__(self, size: int, batch: int, seed: int) -> None:
        self.shards = [ResumableSampler(size, seed=seed, rank=r, num_replicas=2)
                       for r in (0, 1)]
        self.batch, self.epoch = batch, 0

    def __len__(self) -> int:
        return len(self.shards[0]) // self.batch

    def __iter__(self) -> Iterator[list[int]]:
        orders = [s.order(self.epoch) for s in self.shards]
        self.epoch += 1
        for i in range(0, len(orders[0]), self.batch):
            yield orders[0][i:i + self.batch] + orders[1][i:i + self.batch]
