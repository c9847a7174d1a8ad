"""The writer lock of a run folder: a live holder refuses a second writer, a dead one's lock
is taken over, and Run.create/Run.reopen/close take and release it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from loopwise.record.lock import LOCK_FILE, RunLock, RunLockedError
from loopwise.record.run import Run


def test_a_second_writer_gets_an_error_naming_the_live_holder(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "exp")
    before = (run.path / "run.json").read_text()
    holder = json.loads((run.path / LOCK_FILE).read_text())
    assert holder["pid"] == os.getpid()
    with pytest.raises(RunLockedError, match=rf"process {os.getpid()} is writing it"):
        Run.reopen(run.path)
    assert (run.path / "run.json").read_text() == before  # the refused reopen changed nothing
    run.close()
    assert not (run.path / LOCK_FILE).exists()
    again = Run.reopen(run.path)  # released: it can be resumed
    again.close()


def test_the_error_is_public_in_loopwise_record(tmp_path: Path) -> None:
    import loopwise.record

    assert loopwise.record.RunLockedError is RunLockedError
    assert "RunLockedError" in loopwise.record.__all__
    run = Run.create(tmp_path, "exp")
    with pytest.raises(loopwise.record.RunLockedError):
        Run.reopen(run.path)
    run.close()


def test_a_dead_holders_lock_is_taken_over(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "exp")
    run.close()
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = int(child.stdout)
    (run.path / LOCK_FILE).write_text(json.dumps({"pid": dead, "host": socket.gethostname(),
                                                  "pid_start": 1.0}))
    again = Run.reopen(run.path)
    assert json.loads((run.path / LOCK_FILE).read_text())["pid"] == os.getpid()
    again.close()


def test_a_reused_pid_is_not_mistaken_for_the_holder(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                  "pid_start": 12.0}))  # another start time
    lock = RunLock.acquire(tmp_path)
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid_start"] != 12.0
    lock.release()
    lock.release()  # idempotent
    assert not (tmp_path / LOCK_FILE).exists()
