"""Training under torchrun: 2 processes, gloo on the CPU (real torchrun, real DDP).

The scenarios are scripts beside this file (``dist_*.py``), each launched with
``python -m torch.distributed.run --standalone --nproc_per_node=2`` under a timeout."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
import torch
from _torchrun import kill_when_asked, torchrun, wait

from loopwise.checkpoint.distributed import load_checkpoint, save_checkpoint
from loopwise.checkpoint.errors import CorruptCheckpointError
from loopwise.checkpoint.named import NamedFiles
from loopwise.distributed.merge import merge_windows, next_interval
from loopwise.record import RunReader


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("full")
    code, out = wait(torchrun("dist_train.py", str(tmp), "full", tmp=tmp))
    assert code == 0, out[-3000:]
    return tmp, out


def test_one_bar_on_rank_0_and_the_record_on_rank_0_only(full_run: tuple[Path, str]) -> None:
    tmp, out = full_run
    finals = [line for line in out.replace("\r", "\n").splitlines()
              if line.startswith("epoch 0:") and "8/8" in line]
    assert len(finals) == 1, out[-3000:]  # one rank drew the bar, once
    assert [p.name for p in tmp.iterdir() if (p / "run.json").exists()] == ["train"]
    info = RunReader(tmp / "train").info
    assert info["status"] == "finished"


def test_recorded_values_are_the_mean_over_ranks(full_run: tuple[Path, str]) -> None:
    tmp, _ = full_run
    raw0 = json.loads((tmp / "raw0.json").read_text())
    raw1 = json.loads((tmp / "raw1.json").read_text())
    assert raw0 != raw1  # the ranks saw different batches
    reference = [(a + b) / 2 for a, b in zip(raw0, raw1, strict=True)]
    reader = RunReader(tmp / "train")
    loss = reader.series("loss")
    assert list(loss.steps) == list(range(1, 25))
    assert list(loss.values) == reference
    per_epoch = [sum(reference[i:i + 8]) / 8 for i in (0, 8, 16)]
    assert list(reader.series("epoch/loss").values) == pytest.approx(per_epoch, rel=1e-12)
    val = [json.loads((tmp / f"val{r}.json").read_text()) for r in (0, 1)]
    val_means = [sum((a + b) / 2 for a, b in zip(val[0][i:i + 2], val[1][i:i + 2],
                                                strict=True)) / 2 for i in (0, 2, 4)]
    assert list(reader.series("epoch/val_loss").values) == pytest.approx(val_means, rel=1e-12)
    names = {name for _, name, _ in reader.system()}
    assert "rank0/cpu_pct" in names and "rank1/cpu_pct" in names
    assert not any(n == "cpu_pct" for n in names)


def test_exact_resume_after_sigkill_of_the_whole_group(full_run: tuple[Path, str],
                                                       tmp_path: Path) -> None:
    kill_at = random.Random(14).randint(6, 22)  # a seeded point between checkpoints
    proc = torchrun("dist_train.py", str(tmp_path), "kill", str(kill_at), tmp=tmp_path)
    kill_when_asked(proc, tmp_path)
    assert not (tmp_path / "final.pt").exists()
    code, out = wait(torchrun("dist_train.py", str(tmp_path), "resume", tmp=tmp_path))
    assert code == 0, out[-3000:]
    expected = torch.load(full_run[0] / "final.pt")
    resumed = torch.load(tmp_path / "final.pt")
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)
    reader = RunReader(tmp_path / "train")
    assert reader.info["status"] == "finished"
    assert list(reader.series("loss").steps)[-1] == 24
    full_loss = RunReader(full_run[0] / "train").series("loss")
    assert list(reader.series("loss").values)[-1] == list(full_loss.values)[-1]


def test_session_then_a_crashing_rank(tmp_path: Path) -> None:
    code, out = wait(torchrun("dist_crash.py", str(tmp_path), tmp=tmp_path))
    assert code != 0, out[-3000:]
    # part 0: the opt-out, a monitor on rank 0 alone
    assert list(RunReader(tmp_path / "legacy").series("loss").steps) == [1, 2, 3]  # opt-out
    # part 1: a TrainingSession: one rank prints, the record holds the means over ranks
    assert out.count("Starting training...") == 1 and out.count("Epoch 2/2 Summary:") == 1
    given = [json.loads((tmp_path / f"session{r}.json").read_text()) for r in (0, 1)]
    reader = RunReader(tmp_path / "session")
    assert reader.info["status"] == "finished"
    steps = [(a + b) / 2 for a, b in zip(given[0]["train"], given[1]["train"], strict=True)]
    assert list(reader.series("loss").values) == steps
    assert list(reader.series("epoch/loss").values) == [steps[4], steps[9]]  # last values
    val = [(a + b) / 2 for a, b in zip(given[0]["val"], given[1]["val"], strict=True)]
    assert list(reader.series("epoch/val_loss").values) == [val[1], val[3]]
    # part 2: rank 1 raises; rank 0's run is failed with rank 1's traceback, no rank hangs
    reader = RunReader(tmp_path / "crash")
    assert reader.info["status"] == "failed"
    tracebacks = [e.data["traceback"] for e in reader.events(kind="exception")]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["crash", "legacy", "session"]
    assert tracebacks and tracebacks[0].startswith("rank 1 failed first:")
    assert "ValueError: boom on rank 1" in tracebacks[0]
    assert "rank 0 then stopped" in tracebacks[0]


# -- in one process ---------------------------------------------------------------------------
def test_merge_means_per_step_and_weights_add_up() -> None:
    a = {"step0": 10, "cols": {"loss": ([11, 12], [1.0, 2.0], [1.0, 3.0])},
         "w": {"loss": [2.0, 2.0]}}
    b = {"step0": 0, "cols": {"loss": ([1, 2], [5.0, 6.0], [3.0, 4.0])},
         "w": {"loss": [6.0, 2.0]}}
    columns, weights, uniform = merge_windows([a, b])
    steps, walls, values = columns["loss"]
    assert list(steps) == [11, 12]  # rank 0's numbering
    assert list(walls) == [1.0, 2.0]  # rank 0's wall times
    assert list(values) == [(1.0 * 2 + 3.0 * 6) / 8, (3.0 * 2 + 4.0 * 2) / 4]
    assert weights == {"loss": [8.0, 4.0]} and uniform


def test_next_interval_aims_at_the_target_time() -> None:
    assert next_interval(100, 1.0, 0.5) == 50
    assert next_interval(0, 1.0, 0.5) == 1
    assert next_interval(10, 1e-9, 0.5) == 10_000


def test_resume_under_another_world_size_is_refused_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.ones(2)}, batches_done=3)
    data = torch.load(path, weights_only=False)
    data["distributed"]["world_size"] = 2  # as if saved by two processes
    NamedFiles(tmp_path).save({path.name: data}, step=0)  # through the storage: hash listed
    with pytest.raises(ValueError, match="saved by 2 processes and this run has 1"):
        load_checkpoint(path)
    state = load_checkpoint(path, allow_reshard=True)
    assert state["distributed"]["batches_done"] == 0 and torch.equal(state["w"], torch.ones(2))
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="batches_done must be an int >= 0"):
        save_checkpoint(path, {}, batches_done=-1)


def test_a_changed_byte_in_a_distributed_checkpoint_is_refused_naming_the_file(
        tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.arange(64.0)}, batches_done=1)
    assert torch.equal(load_checkpoint(path)["w"], torch.arange(64.0))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte, same size
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptCheckpointError, match=f"checkpoint {path} is unusable: .*hash"):
        load_checkpoint(path)


def test_without_a_process_group_nothing_changes(tmp_path: Path) -> None:
    from loopwise.distributed.failure import GroupState, failure_report
    from loopwise.distributed.group import train_group
    from loopwise.watch.monitor import TrainingMonitor

    assert train_group() is None
    monitor = TrainingMonitor(range(3), root=tmp_path, name="one", file=io.StringIO())
    for _ in monitor:
        monitor.log({"loss": 1.0})
    monitor.close()
    assert monitor._group is None and monitor._acc.reducer is None
    assert list(RunReader(tmp_path / "one").series("loss").values) == [1.0, 1.0, 1.0]
    state = GroupState(rank=0, world_size=2)
    assert failure_report(state, "Traceback ...\nValueError: x") == "Traceback ...\nValueError: x"
    assert state.broken  # no further exchange after a failure


def test_shard_loader_splits_a_loader_or_says_why_not() -> None:
    from types import SimpleNamespace

    from torch.utils.data import DataLoader, IterableDataset, TensorDataset

    from loopwise.distributed.group import shard_loader
    from loopwise.distributed.sampler import ResumableSampler

    group = SimpleNamespace(rank=1, world_size=2)  # the place in the group: rank 1 of 2
    data = TensorDataset(torch.arange(10.0))
    sharded = shard_loader(DataLoader(data, batch_size=3, shuffle=True), group,
                           what="train_loader", seed=5, pad=True)
    sampler = sharded.sampler
    assert isinstance(sampler, ResumableSampler) and sampler.shuffle and sampler.seed == 5
    assert (sampler.rank, sampler.num_replicas, sharded.batch_size, len(sharded)) == (1, 2, 3, 2)
    assert shard_loader(sharded, group, what="x", seed=0, pad=True) is sharded  # kept

    class Stream(IterableDataset[int]):
        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(range(3))

    with pytest.raises(TypeError, match="under torchrun, val_loader must be a torch DataLoader "
                                        "over a map-style dataset"):
        shard_loader(DataLoader(Stream()), group, what="val_loader", seed=0, pad=False)
    with pytest.raises(TypeError, match="has a custom batch sampler"):
        shard_loader(DataLoader(data, batch_sampler=[[0, 1], [2]]), group, what="train_loader",
                     seed=0, pad=True)
