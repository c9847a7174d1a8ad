"""``Workflow.run()`` unchanged under torchrun: 2 processes, gloo on the CPU (real torchrun).

The scenario is ``dist_workflow.py`` beside this file; the single-process reference runs the
same Trainer here, each step's batch being the two ranks' batches of that step together."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import torch
from _torchrun import BothRanks, kill_when_asked, scenario, torchrun, wait
from torch.utils.data import DataLoader

from loopwise.distributed.errors import ResumeError
from loopwise.record import RunReader
from loopwise.train.workflow.runner import Workflow


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("wf_full")
    code, out = wait(torchrun("dist_workflow.py", str(tmp), "full", tmp=tmp))
    assert code == 0, out[-3000:]
    return tmp, out


def test_one_bar_and_the_epoch_values_of_one_process(full: tuple[Path, str],
                                                     tmp_path: Path) -> None:
    tmp, out = full
    finals = [line for line in out.replace("\r", "\n").splitlines()
              if line.startswith("train") and "8/8" in line]
    assert len(finals) == 3, out[-3000:]  # one bar per epoch, drawn by rank 0 alone
    assert sorted(p.name for p in tmp.iterdir() if p.is_dir()) == ["wf"]  # one experiment
    reader = RunReader(tmp / "wf")
    assert reader.info["status"] == "finished"
    assert list(reader.series("loss").steps) == list(range(1, 25))
    sc = scenario("dist_workflow")
    train, val = sc._dataset()
    toy = sc.Toy(loader=DataLoader(train, batch_sampler=BothRanks(len(train), 4, 0)),
                 val_loader=DataLoader(val, batch_size=16))
    Workflow(toy, tmp_path, 3, "ref", system=False, report=False).run()
    ref = RunReader(tmp_path / "ref")
    for key in ("loss", "epoch/train_loss", "epoch/val_loss"):
        assert list(reader.series(key).values) == pytest.approx(
            list(ref.series(key).values), rel=1e-5), key
    ddp = torch.load(tmp / "wf/last_weights.pt")
    one = torch.load(tmp_path / "ref/last_weights.pt")
    assert all(torch.allclose(ddp[k], one[k], rtol=1e-5, atol=1e-6) for k in one)


def test_exact_resume_after_sigkill_and_another_world_size_refused(
        full: tuple[Path, str], tmp_path: Path) -> None:
    kill_at = random.Random(14).choice([5, 11, 20])  # between mid-epoch checkpoints
    proc = torchrun("dist_workflow.py", str(tmp_path), "kill", str(kill_at), tmp=tmp_path)
    kill_when_asked(proc, tmp_path)
    killed = tmp_path / "copy"
    shutil.copytree(tmp_path / "wf", killed / "wf")
    code, out = wait(torchrun("dist_workflow.py", str(tmp_path), "resume", tmp=tmp_path))
    assert code == 0, out[-3000:]
    resumed_from = [line for line in out.splitlines() if "loopwise: resuming" in line]
    assert len(resumed_from) == 1 and resumed_from[0].endswith("in_epoch)"), out[-3000:]
    expected = torch.load(full[0] / "wf/last_weights.pt")
    resumed = torch.load(tmp_path / "wf/last_weights.pt")
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)  # bit-identical
    reader = RunReader(tmp_path / "wf")
    assert reader.info["status"] == "finished"
    assert list(reader.series("epoch/val_loss").values) == list(
        RunReader(full[0] / "wf").series("epoch/val_loss").values)
    # the same experiment resumed by one process: refused before anything is touched
    sc = scenario("dist_workflow")
    before = (killed / "wf/last_checkpoint.pth").read_bytes()
    with pytest.raises(ResumeError, match=r"saved by 2 processes and this run has 1: each rank "
                                          r"would see other samples than before"):
        Workflow(sc.Toy(), killed, 3, "wf", system=False, report=False).run()
    assert (killed / "wf/last_checkpoint.pth").read_bytes() == before
    # allowed: the epoch saved mid-pass starts again, in one process, from the saved weights
    result = Workflow(sc.Toy(), killed, 3, "wf", system=False, report=False,
                      allow_reshard=True).run()
    assert result.status == "finished" and [r["epoch"] for r in result.history] == [1, 2, 3]


def test_a_crashing_rank_fails_the_run_with_its_traceback_and_no_rank_hangs(
        tmp_path: Path) -> None:
    code, out = wait(torchrun("dist_workflow.py", str(tmp_path), "crash", tmp=tmp_path))
    assert code != 0, out[-3000:]
    runs = [p for p in (tmp_path / "wf").rglob("run.json")]
    assert len(runs) == 1, runs  # one run, written by rank 0
    reader = RunReader(runs[0].parent)
    assert reader.info["status"] == "failed"
    error = reader.info.get("error") or ""
    assert error.startswith("rank 1 failed first:"), error[:2000]
    assert "ValueError: boom on rank 1" in error and "rank 0 then stopped" in error
