"""``fit()`` unchanged under torchrun: 2 processes, gloo on the CPU (real torchrun, real DDP).

The scenario is ``dist_fit.py`` beside this file; the single-process reference runs fit here on
the same data, each step's batch being the two ranks' batches of that step together (DDP
averages the two ranks' gradients of their mean losses: the same step)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from types import ModuleType

import pytest
import torch
from _torchrun import BothRanks, kill_when_asked, scenario, torchrun, wait
from torch.utils.data import DataLoader

from loopwise.record import RunReader
from loopwise.train.fit.entry import fit


def _scenario() -> ModuleType:
    return scenario("dist_fit")


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("fit_full")
    code, out = wait(torchrun("dist_fit.py", str(tmp), "full", tmp=tmp))
    assert code == 0, out[-3000:]
    return tmp, out


def test_one_bar_and_the_epoch_values_of_one_process(full: tuple[Path, str],
                                                     tmp_path: Path) -> None:
    tmp, out = full
    assert out.count("Starting training...") == 1  # rank 0 alone shows the session
    assert out.count("Epoch 3/3 Summary:") == 1
    assert sorted(p.name for p in tmp.iterdir() if p.is_dir()) == ["fit"]  # one run folder
    reader = RunReader(tmp / "fit")
    assert reader.info["status"] == "finished"
    assert list(reader.series("loss").steps) == list(range(1, 25))  # 8 steps per epoch
    # the reference: one process, the two ranks' batches of each step as one batch
    sc = _scenario()
    train, val = sc.dataset()
    model = sc.make_model()
    cfg = sc.config()
    result = fit(model, DataLoader(train, batch_sampler=BothRanks(len(train), 4, cfg.seed)),
                 val_loader=DataLoader(val, batch_size=16), loss_fn=sc.KillAt(),
                 optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                 config=cfg, callbacks=[sc.SaveFinal(tmp_path / "final.pt")], root=tmp_path,
                 name="ref", plots=False, report=False, progress=False, system=False)
    ref = RunReader(tmp_path / "ref")
    for key in ("loss", "epoch/loss", "epoch/val_loss"):
        assert list(reader.series(key).values) == pytest.approx(
            list(ref.series(key).values), rel=1e-5), key
    for rank in (0, 1):  # every rank's result holds the values reduced over the ranks
        shown = json.loads((tmp / f"result{rank}.json").read_text())
        assert shown == pytest.approx(result.val_losses, rel=1e-5)
    ddp, one = torch.load(tmp / "final.pt"), torch.load(tmp_path / "final.pt")
    assert all(torch.allclose(ddp[k], one[k], rtol=1e-5, atol=1e-6) for k in one)


def test_exact_resume_after_sigkill_and_another_world_size_refused(
        full: tuple[Path, str], tmp_path: Path) -> None:
    kill_at = random.Random(14).randint(10, 15)  # in epoch 2, after epoch 1's checkpoint
    proc = torchrun("dist_fit.py", str(tmp_path), "kill", str(kill_at), tmp=tmp_path)
    kill_when_asked(proc, tmp_path)
    assert not (tmp_path / "final.pt").exists()
    killed = tmp_path / "copy"
    shutil.copytree(tmp_path / "fit", killed / "fit")
    code, out = wait(torchrun("dist_fit.py", str(tmp_path), "resume", tmp=tmp_path))
    assert code == 0, out[-3000:]
    expected, resumed = torch.load(full[0] / "final.pt"), torch.load(tmp_path / "final.pt")
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)  # bit-identical
    reader = RunReader(tmp_path / "fit")
    assert reader.info["status"] == "finished"
    assert [e.message for e in reader.events(kind="fit_resumed")] == [
        "resumed from the checkpoint at step 8 (epoch 1)"]
    assert list(reader.series("epoch/loss").values) == list(
        RunReader(full[0] / "fit").series("epoch/loss").values)
    # the same run resumed by one process: the sharding would differ, so it is refused
    sc = _scenario()
    train, val = sc.dataset()
    model = sc.make_model()
    with pytest.raises(ValueError, match="was saved by 2 processes and this run has 1: each "
                                         "rank would see other samples than before"):
        fit(model, DataLoader(train, batch_size=4, shuffle=True),
            val_loader=DataLoader(val, batch_size=4), loss_fn=sc.KillAt(),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
            config=sc.config(), callbacks=[sc.SaveFinal(None)], root=killed, name="fit",
            plots=False, report=False, progress=False, system=False)
    result = fit(model, DataLoader(train, batch_size=4, shuffle=True),  # allowed: it continues
                 val_loader=DataLoader(val, batch_size=4), loss_fn=sc.KillAt(),
                 optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                 config=sc.config(), callbacks=[sc.SaveFinal(None)], root=killed, name="fit",
                 plots=False, report=False, progress=False, system=False, allow_reshard=True)
    assert result.status == "finished" and len(result.val_losses) == 3  # epoch 1 was restored


def test_a_crashing_rank_fails_the_run_with_its_traceback_and_no_rank_hangs(
        tmp_path: Path) -> None:
    code, out = wait(torchrun("dist_fit.py", str(tmp_path), "crash", tmp=tmp_path))
    assert code != 0, out[-3000:]
    reader = RunReader(tmp_path / "fit")
    assert reader.info["status"] == "failed"
    error = reader.info.get("error") or ""
    assert error.startswith("rank 1 failed first:"), error[:2000]
    assert "ValueError: boom on rank 1" in error and "rank 0 then stopped" in error
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["fit"]  # one run folder
