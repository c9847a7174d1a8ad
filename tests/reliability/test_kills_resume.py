"""Resumes after a kill, in one process: the defects the kill campaign found, one test each.

- fit and the Keras callback killed before their first checkpoint start again under the same
  name, and their record counts from step 0 again (not from where the killed process was);
- a TrainingMonitor's state carries the epochs ended, so a resumed loop numbers its epochs as
  the checkpoint says, whatever run.json held when the process died;
- CheckpointManager(run=run).save() puts the run's record on disk first: a resume from that
  checkpoint leaves no gap in the record;
- an epoch that ends again after a resume (its summary recorded before the kill) still counts
  as ended.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise.checkpoint.manager import CheckpointManager
from loopwise.record import Run, RunReader
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.entry import fit
from loopwise.watch.monitor import TrainingMonitor


def _epochs(folder) -> list[tuple[int, float]]:
    series = RunReader(folder).series("epoch")
    return list(zip(series.steps, series.values))


def test_fit_rerun_without_a_checkpoint_records_from_step_zero_again(tmp_path) -> None:
    torch.manual_seed(0)
    x = torch.randn(40, 4)
    loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
    config = TrainingConfig(epochs=3, patience=0, lr_patience=0, device="cpu", model_name="m",
                            checkpoint_every=10)
    calls = {"n": 0}

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 8:  # dies in epoch 2, before any checkpoint
            raise RuntimeError("died")
        return torch.nn.functional.mse_loss(out, y)

    quiet = {"plots": False, "progress": False, "system": False}
    with pytest.raises(RuntimeError, match="died"):
        fit(torch.nn.Linear(4, 1), loader, loss_fn=loss_fn, config=config, root=tmp_path,
            name="exp", **quiet)
    assert RunReader(tmp_path / "exp").info["global_step"] > 0
    result = fit(torch.nn.Linear(4, 1), loader, loss_fn=loss_fn, config=config,
                 root=tmp_path, name="exp", **quiet)
    assert result.status == "finished"
    # 5 batches an epoch: the epochs end at steps 5, 10, 15, as in a run that never failed
    assert _epochs(tmp_path / "exp") == [(5, 1.0), (10, 2.0), (15, 3.0)]
    assert RunReader(tmp_path / "exp").info["global_step"] == 15


def test_keras_resume_before_the_first_checkpoint_reopens_the_run(tmp_path) -> None:
    from loopwise.keras.run import resumed_or_new_run

    run = Run.create(tmp_path, "exp", config={"a": 1})
    run.advance(7)
    run.close("interrupted")
    again = resumed_or_new_run(None, tmp_path, "exp", {"b": 2}, resume=True)
    try:
        assert again.path == tmp_path / "exp" and again.global_step == 0
        assert RunReader(again.path).config() == {"a": 1, "b": 2}
    finally:
        again.close("finished")
    for resume in (False, True):  # a finished run, or no resume asked: never written into
        try:
            resumed_or_new_run(None, tmp_path, "exp", {}, resume=resume)
        except FileExistsError as exc:
            assert "already exists" in str(exc)
        else:
            raise AssertionError("a finished run was reopened")


def test_a_monitor_state_restores_the_epochs_ended(tmp_path) -> None:
    run = Run.create(tmp_path, "exp")
    for _ in range(2):  # two passes: epochs 1 and 2 end at steps 3 and 6
        monitor = TrainingMonitor(range(3), run=run, disable=True, system=False, health=False)
        for _ in monitor:
            monitor.log({"loss": 1.0})
    state = monitor.state_dict()
    run.close("finished")
    assert state["step"] == 6 and state["epoch"] == 2
    resumed = Run.create(tmp_path, "other")  # a run.json that says nothing about the epochs
    monitor = TrainingMonitor(range(3), run=resumed, disable=True, system=False, health=False)
    monitor.load_state_dict(state)
    for _ in monitor:
        monitor.log({"loss": 1.0})
    resumed.close("finished")
    assert _epochs(tmp_path / "other") == [(9, 3.0)]


def test_a_checkpoint_save_puts_the_record_on_disk_first(tmp_path) -> None:
    run = Run.create(tmp_path, "exp", flush_interval=1.0)  # the writer waits a second
    try:
        run.log_scalars({"loss": 0.5}, step=1)
        run.log_epoch(1, {"loss": 0.5}, step=1)
        CheckpointManager(tmp_path / "ckpt", run=run).save({"w": torch.ones(2)}, step=1)
        reader = RunReader(tmp_path / "exp")
        assert list(reader.series("loss").steps) == [1]
        assert list(reader.series("epoch/loss").steps) == [1]
    finally:
        run.close("finished")


def test_an_epoch_recorded_before_a_resume_still_counts_as_ended(tmp_path) -> None:
    run = Run.create(tmp_path, "exp")
    run.log_epoch(1, {"loss": 1.0}, step=5)
    run.close("interrupted")
    again = Run.reopen(tmp_path / "exp")
    again.restore_step(3, epoch=0)  # the checkpoint was taken inside epoch 1
    again.log_epoch(1, {"loss": 1.0}, step=5)  # epoch 1 ends again: recorded once only
    assert again.epoch == 1  # so the next pass is epoch 2, not epoch 1 refused forever
    again.log_epoch(again.epoch + 1, {"loss": 0.5}, step=10)
    again.close("finished")
    assert _epochs(tmp_path / "exp") == [(5, 1.0), (10, 2.0)]


def test_an_epoch_point_recorded_before_a_resume_is_not_recorded_again(tmp_path) -> None:
    run = Run.create(tmp_path, "exp")
    run.log_epoch(1, {"loss": 1.0}, step=5)  # the killed process recorded one summary...
    run.close("interrupted")
    again = Run.reopen(tmp_path / "exp")
    again.log_epoch(1, {"lr": 0.1}, step=5)  # ...the resume records the one it lost
    again.close("finished")
    assert _epochs(tmp_path / "exp") == [(5, 1.0)]
    assert list(RunReader(tmp_path / "exp").series("epoch/lr").steps) == [5]


def _unborn(root, name: str):
    """A run SIGKILLed between its folder's creation and its run.json (an unborn run)."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import os, signal
        from loopwise.record import run as run_module
        acquire = run_module.RunLock.acquire
        def acquire_then_die(folder):
            acquire(folder)
            os.kill(os.getpid(), signal.SIGKILL)
        run_module.RunLock.acquire = acquire_then_die
        run_module.Run.create({str(root)!r}, {name!r})
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "src"),
         os.environ.get("PYTHONPATH", "")])}
    assert subprocess.run([sys.executable, "-c", code], env=env,
                          check=False).returncode == -signal.SIGKILL
    assert [p.name for p in (root / name).iterdir()] == ["writer.lock"]
    return root / name


def test_a_monitor_and_a_workflow_reuse_a_run_killed_before_its_run_json(tmp_path) -> None:
    import sys
    from pathlib import Path

    from loopwise.record import list_runs

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from _workflow_toy import ARGS, ToyTrainer

    from loopwise.train.workflow.runner import Workflow

    folder = _unborn(tmp_path, "mon")
    monitor = TrainingMonitor(range(3), root=tmp_path, name="mon", disable=True, system=False,
                              health=False)
    for _ in monitor:
        monitor.log({"loss": 1.0})
    monitor.close()
    assert RunReader(folder).status == "finished" and len(RunReader(folder).series("loss")) == 3
    folder = _unborn(tmp_path, "wf")
    result = Workflow(ToyTrainer(dict(ARGS)), tmp_path, 1, "wf", system=False).run()
    assert result.status == "finished" and RunReader(folder).status == "finished"
    assert {"mon", "wf"} <= {r.name for r in list_runs(tmp_path)}
