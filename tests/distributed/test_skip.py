"""The one way a resumed epoch skips batches: in the sampler, for any map-style DataLoader
(shuffle=True included) and for a ResumableSampler; no skipped sample is loaded, and the pass
continues as the uninterrupted one would (same order, same RNG afterwards)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise.distributed.sampler import ResumableSampler
from loopwise.distributed.skip import SkippingBatchSampler, skip_batches
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.entry import fit


class Counted(TensorDataset):
    fetched = 0

    def __getitem__(self, index: int) -> Any:
        type(self).fetched += 1
        return super().__getitem__(index)


def _dataset(rows: int = 40) -> Counted:
    g = torch.Generator().manual_seed(0)
    return Counted(torch.randn(rows, 3, generator=g), torch.arange(rows))


@pytest.mark.parametrize("kind", ["own_generator", "global_rng", "workers", "unbatched",
                                  "resumable"])
def test_the_resumed_pass_is_the_rest_of_the_uninterrupted_one(kind: str) -> None:
    ds = _dataset()
    options: dict[str, Any] = {"batch_size": 8, "shuffle": True}
    if kind == "own_generator":
        options["generator"] = torch.Generator().manual_seed(5)
    elif kind == "workers":
        options["num_workers"] = 2
    elif kind == "unbatched":
        options = {"batch_size": None, "shuffle": True}
    elif kind == "resumable":
        options = {"batch_size": 8, "sampler": ResumableSampler(ds, seed=2)}
    loader = DataLoader(ds, **options)
    skip = 3
    torch.manual_seed(11)
    gen_state = None if loader.generator is None else loader.generator.get_state()
    if isinstance(loader.sampler, ResumableSampler):
        loader.sampler.set_epoch(0)
    whole = iter(loader)
    done = [next(whole) for _ in range(skip)]
    after_skip = torch.get_rng_state()
    rest = list(whole)
    assert len(done) == skip

    torch.manual_seed(11)  # the RNG as the interrupted epoch began
    if gen_state is not None:
        assert loader.generator is not None
        loader.generator.set_state(gen_state)
    if isinstance(loader.sampler, ResumableSampler):
        loader.sampler.set_epoch(0)
    Counted.fetched = 0
    source, start = skip_batches(loader, skip)
    it = iter(source)
    start()
    assert torch.equal(torch.get_rng_state(), after_skip)  # drawn as the uninterrupted pass did
    resumed = list(it)
    assert len(resumed) == len(rest)
    for a, b in zip(resumed, rest, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    if kind != "workers":  # (worker processes count in their own copy)
        assert Counted.fetched == len(ds) - (skip * 8 if kind != "unbatched" else skip)


def test_zero_and_bad_skips() -> None:
    loader = DataLoader(_dataset(), batch_size=8)
    assert skip_batches(loader, 0)[0] is loader
    with pytest.raises(ValueError, match="batches to skip must be an int >= 0, got -1"):
        skip_batches(loader, -1)
    with pytest.raises(TypeError, match="batches to skip must be an int, got float"):
        SkippingBatchSampler([], 1.5)  # type: ignore[arg-type]
    assert len(SkippingBatchSampler(range(5), 2)) == 3
    assert len(SkippingBatchSampler(range(5), 9)) == 0


def test_fit_resumes_mid_epoch_without_loading_the_skipped_batches(tmp_path: Path) -> None:
    def run(name: str, interrupt_at: int | None) -> Any:
        ds = _dataset(64)
        ds.tensors = (ds.tensors[0], ds.tensors[0].sum(dim=1, keepdim=True))
        loader = DataLoader(ds, batch_size=16, shuffle=True,
                            generator=torch.Generator().manual_seed(1))
        steps = {"n": 0}

        def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if torch.is_grad_enabled():
                steps["n"] += 1
                if steps["n"] == interrupt_at:
                    os.kill(os.getpid(), signal.SIGINT)
            return torch.nn.functional.mse_loss(out, y)

        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.3),
                                    torch.nn.Linear(8, 1))
        config = TrainingConfig(epochs=3, patience=0, lr_patience=0, device="cpu",
                                learning_rate=0.01, model_name="m")
        return fit(model, loader, loss_fn=loss_fn, config=config, root=tmp_path, name=name,
                   plots=False, progress=False, system=False)

    reference = run("ref", None)
    with pytest.raises(KeyboardInterrupt, match="in epoch 2 after 2 batches"):
        run("cut", 6)  # the 6th step: batch 2 of epoch 2
    Counted.fetched = 0
    resumed = run("cut", None)
    assert Counted.fetched == (2 + 4) * 16  # the rest of epoch 2 and epoch 3, nothing replayed
    assert resumed.train_losses == reference.train_losses
    for p, q in zip(resumed.model.parameters(), reference.model.parameters(), strict=True):
        assert torch.equal(p, q)
