"""Exact-resume helpers: RNG states, the seeded skipping sampler, the resumable loader, and the
errors for states that cannot be restored."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from loopwise.checkpoint.store import load_file, save_file
from loopwise.distributed.loader import LoopPosition, ResumableLoader
from loopwise.distributed.rng import capture_rng_state, restore_rng_state
from loopwise.distributed.sampler import ResumableSampler, ResumeError, find_resumable_sampler
from loopwise.train.resume.restore import restore_component, world_size


def _draw() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in NumPy's state
    state = capture_rng_state()
    expected = _draw()
    save_file(tmp_path / "rng.pt", state)
    loaded = load_file(tmp_path / "rng.pt")  # weights_only=True
    _draw()
    restore_rng_state(loaded)
    assert _draw() == expected
    assert state["cuda"] is None  # CUDA never initialised in this CPU test


def test_rng_state_errors() -> None:
    with pytest.raises(ResumeError, match="lacks numpy, cuda"):
        restore_rng_state({"python": None, "torch": None})
    state = capture_rng_state()
    state["cuda"] = [torch.zeros(8, dtype=torch.uint8)] * 2
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible != 2:
        with pytest.raises(ResumeError, match=f"2 CUDA device\\(s\\) but this process sees "
                                              f"{visible}"):
            restore_rng_state(state)


class Counting(Dataset[int]):
    def __init__(self, n: int) -> None:
        self.n = n
        self.loaded: list[int] = []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        self.loaded.append(i)
        return i


def test_sampler_order_depends_only_on_seed_and_epoch() -> None:
    a, b = ResumableSampler(10, seed=5), ResumableSampler(range(10), seed=5)
    assert list(a) == list(b) and list(a) == list(b)  # epoch 0 then epoch 1
    assert a.epoch == 2 and a.last_epoch == 1
    assert sorted(list(a)) == list(range(10))
    c = ResumableSampler(10, seed=5)
    c.set_epoch(1)
    assert list(c) == b.order(1) != b.order(0)
    assert list(ResumableSampler(4, shuffle=False)) == [0, 1, 2, 3]
    assert len(a) == 10


def test_sampler_skip_applies_to_the_next_pass_only() -> None:
    s = ResumableSampler(10, seed=0)
    s.set_epoch(3)
    s.skip_next(4)
    assert list(s) == s.order(3)[4:]
    assert list(s) == s.order(4)


def test_sampler_state_and_mismatches() -> None:
    s = ResumableSampler(10, seed=1)
    s.set_epoch(2)
    s.skip_next(3)
    other = ResumableSampler(10, seed=1)
    other.load_state_dict(s.state_dict())
    assert list(other) == s.order(2)[3:]
    with pytest.raises(ResumeError, match="the sampler's size was 10 when the checkpoint was "
                                          "written and is 12 now"):
        ResumableSampler(12, seed=1).load_state_dict(s.state_dict())
    with pytest.raises(ResumeError, match="seed was 1"):
        ResumableSampler(10, seed=2).load_state_dict(s.state_dict())


def test_sampler_bad_input() -> None:
    with pytest.raises(TypeError, match="seed must be an int"):
        ResumableSampler(3, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="epoch must be an int >= 0"):
        ResumableSampler(3).set_epoch(-1)
    with pytest.raises(ValueError, match="samples to skip must be an int >= 0"):
        ResumableSampler(3).skip_next(-2)


def test_sampler_shards_a_pass_over_the_ranks() -> None:
    full = ResumableSampler(10, seed=3).order(2)
    padded = [ResumableSampler(10, seed=3, rank=r, num_replicas=4) for r in range(4)]
    shards = [s.order(2) for s in padded]
    assert [len(s) for s in padded] == [3, 3, 3, 3] == [len(x) for x in shards]
    assert sorted(i for x in shards for i in x) == sorted(full + full[:2])  # padded from the start
    exact = [ResumableSampler(10, seed=3, rank=r, num_replicas=4, pad=False) for r in range(4)]
    assert sorted(i for s in exact for i in s.order(2)) == list(range(10))  # each sample once
    assert [len(s) for s in exact] == [3, 3, 2, 2]
    exact[1].set_epoch(2)
    exact[1].skip_next(1)
    assert list(exact[1]) == exact[1].order(2)[1:]  # the skip counts in the rank's share
    with pytest.raises(ValueError, match=r"rank must be an int from 0 to 1 \(0 to num_replicas - 1\), got 2"):
        ResumableSampler(10, rank=2, num_replicas=2)
    with pytest.raises(ValueError, match="num_replicas must be an int >= 1"):
        ResumableSampler(10, num_replicas=0)


def test_find_sampler_explains_what_is_needed() -> None:
    ds = Counting(8)
    with pytest.raises(TypeError, match="need a torch DataLoader, got list"):
        find_resumable_sampler([1, 2])
    with pytest.raises(TypeError, match="sampler=ResumableSampler\\(dataset, seed=0\\)"):
        find_resumable_sampler(DataLoader(ds, batch_size=2, shuffle=True))
    sampler = ResumableSampler(ds)
    assert find_resumable_sampler(DataLoader(ds, batch_size=2, sampler=sampler)) == (sampler, 2)


def _loader(ds: Counting, seed: int = 0) -> DataLoader[Any]:
    return DataLoader(ds, batch_size=4, sampler=ResumableSampler(ds, seed=seed))


def test_loader_checkpoints_every_n_but_not_after_the_last_batch() -> None:
    ds = Counting(20)  # 5 batches
    seen: list[LoopPosition] = []
    loader = ResumableLoader(_loader(ds), every=2, on_checkpoint=seen.append)
    batches = [b.tolist() for b in loader]
    assert len(batches) == 5
    assert [p.batches_done for p in seen] == [2, 4]
    assert all(p.epoch == 0 and p.batch_size == 4 for p in seen)


def test_resumed_pass_skips_seen_batches_without_loading_them() -> None:
    ds = Counting(20)
    positions: list[tuple[LoopPosition, dict[str, Any]]] = []

    def save(position: LoopPosition) -> None:
        positions.append((position, capture_rng_state()))

    full = ResumableLoader(_loader(ds, seed=7), every=3, on_checkpoint=save)
    reference = []
    for batch in full:
        reference.append((batch.tolist(), torch.rand(1).item()))  # the loop draws random numbers
    position, rng = positions[0]
    ds2 = Counting(20)
    resumed = ResumableLoader(_loader(ds2, seed=7), resume=(position, rng))
    assert len(resumed) == 2
    torch.manual_seed(999)  # whatever happened in between is replaced by the saved states
    rest = [(b.tolist(), torch.rand(1).item()) for b in resumed]
    assert rest == reference[3:]
    assert sorted(ds2.loaded) == sorted(i for b, _ in reference[3:] for i in b)


def test_loader_refuses_a_changed_batch_size() -> None:
    ds = Counting(8)
    position = LoopPosition(epoch=0, batches_done=1, batch_size=2, rng_at_start={})
    with pytest.raises(ResumeError, match="written with batch_size=2, the loader now has "
                                          "batch_size=4"):
        ResumableLoader(_loader(ds), resume=(position, {}))
    with pytest.raises(ValueError, match="checkpoint_every must be an int >= 1"):
        ResumableLoader(_loader(ds), every=0)
    with pytest.raises(ResumeError, match="lacks 'rng_at_start'"):
        LoopPosition.from_state({"epoch": 0, "batches_done": 1, "batch_size": 2})


def test_restore_component_names_the_problem() -> None:
    model = torch.nn.Linear(3, 2)
    saved = model.state_dict()
    bigger = torch.nn.Linear(4, 2)
    with pytest.raises(ResumeError, match="cannot restore the model from ckpt: .*size mismatch "
                                          "for weight"):
        restore_component("model", bigger, saved, source="ckpt")
    partial = {"weight": saved["weight"]}
    with pytest.raises(ResumeError, match="Missing key\\(s\\) in state_dict: \"bias\""):
        restore_component("model", model, partial, source="ckpt")
    with pytest.raises(ResumeError, match="holds no LR scheduler state but this trainer has"):
        restore_component("LR scheduler", object(), None, source="ckpt")
    with pytest.raises(ResumeError, match="holds grad scaler state but this trainer has no"):
        restore_component("grad scaler", None, {"scale": 1.0}, source="ckpt")
    restore_component("grad scaler", None, None, source="ckpt")


def test_optimizer_state_shape_and_count_are_checked() -> None:
    small = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(small.parameters())
    small(torch.ones(1, 3)).sum().backward()
    opt.step()
    big = torch.nn.Linear(5, 2)
    with pytest.raises(ResumeError, match="its 'exp_avg' for parameter 0 has shape \\(2, 3\\), "
                                          "the parameter has \\(2, 5\\)"):
        restore_component("optimizer", torch.optim.Adam(big.parameters()), opt.state_dict(),
                          source="ckpt")
    one = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(ResumeError, match="saved for 2 parameters, this optimizer has 1"):
        restore_component("optimizer", one, opt.state_dict(), source="ckpt")
    fresh = torch.optim.Adam(small.parameters())
    restore_component("optimizer", fresh, opt.state_dict(), source="ckpt")
    assert fresh.state_dict()["state"][0]["step"] == 1


def test_world_size_without_distributed() -> None:
    assert world_size() == 1
