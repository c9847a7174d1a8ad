"""Ctrl-C (GracefulInterrupt, shared by fit and Workflow): the first SIGINT is a request (the step
ends, a checkpoint is saved, the run ends interrupted), the second interrupts at once; on real
training processes sent SIGINT, then resumed."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from loopwise.record import RunReader
from loopwise.train.interrupt import GracefulInterrupt


def test_first_sigint_sets_the_flag_second_raises_and_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt), GracefulInterrupt(stream=stream) as guard:
        assert guard.active
        os.kill(os.getpid(), signal.SIGINT)
        assert guard.requested  # the loop goes on to finish its step
        assert "finishing the current step and saving a checkpoint" in stream.getvalue()
        os.kill(os.getpid(), signal.SIGINT)  # second Ctrl-C: at once
        pytest.fail("the second SIGINT did not interrupt")
    assert signal.getsignal(signal.SIGINT) is before


def test_off_the_main_thread_it_is_inert() -> None:
    seen: list[bool] = []

    def work() -> None:
        with GracefulInterrupt() as guard:
            seen.append(guard.active)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [False]


def test_broken_stream_does_not_stop_the_request() -> None:
    stream = io.StringIO()
    stream.close()
    with GracefulInterrupt(stream=stream) as guard:
        os.kill(os.getpid(), signal.SIGINT)
        assert guard.requested


# -- Ctrl-C on a real training process: fit and Workflow, one guard ------------------------------

TOY = Path(__file__).parent / "_workflow_toy.py"
FIT_CHILD = Path(__file__).with_name("sigint_child.py")


def _start(args: list[str]) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _ctrl_c(proc: subprocess.Popen[str], marker: Path, times: int) -> tuple[str, str]:
    """Wait until the child is in the marked (slow) steps, then press Ctrl-C ``times`` times."""
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the child never reached the marked step"
        time.sleep(0.02)
    for n in range(times):
        if n:
            time.sleep(0.3)  # the second Ctrl-C comes while the step still runs
        proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=180)  # a held second Ctrl-C: the step sleeps an hour


def _toy(root: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOY), str(root), name, "4", *extra],
                          capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, PYTHONHASHSEED="0"))


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = torch.load(folder / "last_weights.pt", weights_only=True)
    return out


def _intact(folder: Path) -> RunReader:
    reader = RunReader(folder)
    assert reader.info["status"] == "interrupted"
    assert reader.damaged_parts() == []  # every series, event and sample reads
    assert not list(folder.rglob("*.tmp"))
    return reader


@pytest.fixture(scope="module")
def workflow_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reference")
    done = _toy(root, "ref")
    assert done.returncode == 0, done.stderr
    return root / "ref"


def test_workflow_first_ctrl_c_ends_the_step_saves_and_resumes_bit_identical(
        tmp_path: Path, workflow_reference: Path) -> None:
    proc = _start([str(TOY), str(tmp_path), "exp", "4", "--slow", "2:3:0.05"])
    out, err = _ctrl_c(proc, tmp_path / "exp.marker", times=1)
    assert proc.returncode == 130, err  # KeyboardInterrupt reached the caller
    assert "finishing the current step and saving a checkpoint" in err
    assert "KeyboardInterrupt: interrupted by Ctrl-C in epoch 2 after" in out
    folder = tmp_path / "exp"
    reader = _intact(folder)
    (event,) = [e for e in reader.events(kind="interrupted") if e.data]
    assert event.data is not None and event.data["epoch"] == 2
    state = torch.load(folder / "last_checkpoint.pth", weights_only=True)
    assert state["phase"] == "in_epoch"  # where the step ended, not the epoch's start
    assert state["loop"]["batches_done"] == event.data["batch"] >= 3
    assert reader.series("loss").steps[-1] == 12 + event.data["batch"]  # no step after it
    resumed = _toy(tmp_path, "exp")
    assert resumed.returncode == 0, resumed.stderr
    assert RunReader(folder).info["status"] == "finished"
    ref = _weights(workflow_reference)
    got = _weights(folder)
    assert all(torch.equal(ref[k], got[k]) for k in ref)  # as if never interrupted
    assert list(RunReader(folder).series("loss").steps) == list(range(1, 49))


def test_workflow_second_ctrl_c_stops_at_once_and_the_run_still_closes_interrupted(
        tmp_path: Path, workflow_reference: Path) -> None:
    proc = _start([str(TOY), str(tmp_path), "exp", "4", "--slow", "2:3:3600"])
    out, err = _ctrl_c(proc, tmp_path / "exp.marker", times=2)
    assert proc.returncode == 130, err
    assert out.strip() == "KeyboardInterrupt:"  # raised inside the step, not at its end
    folder = tmp_path / "exp"
    reader = _intact(folder)
    assert [e.message for e in reader.events(kind="interrupted")] == ["interrupted by Ctrl-C"]
    assert reader.series("loss").steps[-1] == 15  # the step it was in never finished
    state = torch.load(folder / "last_checkpoint.pth", weights_only=True)
    assert (state["epoch"], state["phase"]) == (1, "trained")  # nothing saved after it
    resumed = _toy(tmp_path, "exp")  # from epoch 1's checkpoint
    assert resumed.returncode == 0, resumed.stderr
    ref = _weights(workflow_reference)
    got = _weights(folder)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert list(RunReader(folder).series("loss").steps) == list(range(1, 49))


def test_fit_second_ctrl_c_stops_at_once_and_resume_finishes(tmp_path: Path) -> None:
    proc = _start([str(FIT_CHILD), str(tmp_path), "cut", "16", str(tmp_path / "cut.pt"),
                   "3600"])
    out, err = _ctrl_c(proc, tmp_path / "cut.marker", times=2)
    assert proc.returncode == 130, err
    assert out.strip() == "KeyboardInterrupt:"  # not the graceful "... checkpoint saved"
    folder = tmp_path / "cut"
    reader = _intact(folder)
    assert not [e for e in reader.events(kind="interrupted") if e.data]
    resumed = _start([str(FIT_CHILD), str(tmp_path), "cut", "-1", str(tmp_path / "cut.pt")])
    out, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err
    assert "status=finished epochs=3" in out
    assert RunReader(folder).info["status"] == "finished"
    assert RunReader(folder).events(kind="fit_resumed")
