"""The sampler exact resume needs: its order depends on ``(seed, epoch)`` only.

* ``ResumableSampler``: a seeded sampler whose order depends only on ``(seed, epoch)`` and that
  can start a pass at a given sample, so a resumed epoch skips the batches already trained on
  without loading them.
* ``find_resumable_sampler``: the ResumableSampler behind a DataLoader, and its batch size.

``ResumableLoader`` (a pass that can be checkpointed and resumed) is in
:mod:`loopwise.distributed.loader`.
The generators' states are :mod:`loopwise.distributed.rng`'s; restoring components with
clear errors is :mod:`loopwise.train.resume.restore`'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from loopwise.distributed.errors import ResumeError
from loopwise.utils.validate import check_count, check_int

__all__ = ["ResumableSampler", "ResumeError", "find_resumable_sampler"]


class ResumableSampler(Sampler[int]):
    """Indices ``0..n-1``, shuffled by a generator seeded with ``seed + epoch``.

    Each ``iter()`` produces the pass ``epoch`` and then advances it (``set_epoch`` overrides,
    as with ``DistributedSampler``). ``skip_next(k)`` makes the next pass start at its k-th
    sample: the skipped indices are never handed to the DataLoader, so nothing is loaded.

    Under ``torchrun``, ``num_replicas`` processes each take their ``rank``'s share of every
    pass (``order[rank::num_replicas]``, as ``DistributedSampler`` does); with ``pad`` the order
    is first extended by its own first indices so that every rank gets the same number of
    samples (needed for training: DDP's ranks must take the same number of steps).
    """

    def __init__(self, data_source: Sized | int, *, shuffle: bool = True, seed: int = 0,
                 rank: int = 0, num_replicas: int = 1, pad: bool = True) -> None:
        if isinstance(data_source, bool):
            raise TypeError("data_source must be a dataset (anything with len()) or a size")
        size = data_source if isinstance(data_source, int) else len(data_source)
        if size < 0:
            raise ValueError(f"data_source size must be >= 0, got {size}")
        seed = check_int(seed, what="seed", minimum=None)
        num_replicas = check_int(num_replicas, what="num_replicas", minimum=1,
                                 hint="the world size")
        rank = check_int(rank, what="rank", minimum=0, maximum=num_replicas - 1,
                         hint="0 to num_replicas - 1")
        self.size = size
        self.rank, self.num_replicas, self.pad = rank, num_replicas, bool(pad)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.epoch = 0
        self.last_epoch: int | None = None
        self._skip = 0

    def __len__(self) -> int:
        world = self.num_replicas
        if self.pad:
            return -(-self.size // world)
        return len(range(self.rank, self.size, world))

    def set_epoch(self, epoch: int) -> None:
        epoch = check_count(epoch, what="epoch")
        self.epoch = epoch

    def skip_next(self, samples: int) -> None:
        """Start the next pass at sample ``samples`` (0 = from the beginning)."""
        samples = check_count(samples, what="samples to skip")
        self._skip = samples

    def order(self, epoch: int) -> list[int]:
        """This rank's order of pass ``epoch`` (the full order in one process)."""
        if not self.shuffle:
            full = list(range(self.size))
        else:
            gen = torch.Generator()
            gen.manual_seed(self.seed + epoch)
            full = torch.randperm(self.size, generator=gen).tolist()
        world = self.num_replicas
        if world == 1:
            return full
        if self.pad and full:
            extra = -len(full) % world
            full = full + (full * (extra // len(full) + 1))[:extra]
        return full[self.rank::world]

    def __iter__(self) -> Iterator[int]:
        epoch, skip = self.epoch, self._skip
        self.last_epoch = epoch
        self.epoch = epoch + 1
        self._skip = 0
        return iter(self.order(epoch)[skip:])

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "shuffle": self.shuffle, "seed": self.seed,
                "epoch": self.epoch, "skip": self._skip}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key in ("size", "shuffle", "seed", "epoch", "skip"):
            if key not in state:
                raise ResumeError(f"ResumableSampler state is missing {key!r}")
        for key, now in (("size", self.size), ("shuffle", self.shuffle), ("seed", self.seed)):
            if state[key] != now:
                raise ResumeError(
                    f"the sampler's {key} was {state[key]!r} when the checkpoint was written "
                    f"and is {now!r} now; a resumed pass would visit different samples"
                )
        self.epoch = int(state["epoch"])
        self._skip = int(state["skip"])


def find_resumable_sampler(loader: Any) -> tuple[ResumableSampler, int]:
    """The ResumableSampler behind ``loader`` and the loader's batch size (or a clear error)."""
    if not isinstance(loader, DataLoader):
        raise TypeError(
            f"mid-epoch checkpoints need a torch DataLoader, got {type(loader).__name__}; "
            "iterate a DataLoader(dataset, batch_size=..., sampler=ResumableSampler(dataset))"
        )
    batch_sampler = loader.batch_sampler
    sampler: object = loader.sampler
    if not isinstance(sampler, ResumableSampler):
        sampler = getattr(batch_sampler, "sampler", None)
    if not isinstance(sampler, ResumableSampler):
        raise TypeError(
            "mid-epoch checkpoints need the DataLoader's sampler to be a "
            "loopwise.distributed.sampler.ResumableSampler (a seeded sampler that can skip the "
            "batches already seen); build the loader with "
            "DataLoader(dataset, batch_size=..., sampler=ResumableSampler(dataset, seed=0))"
        )
    batch_size = loader.batch_size or getattr(batch_sampler, "batch_size", None)
    if batch_size is None:
        raise TypeError("mid-epoch checkpoints need a fixed batch size (DataLoader(batch_size=N))")
    return sampler, check_int(batch_size, what="the loader's batch_size", minimum=1,
                              hint="mid-epoch checkpoints need a fixed batch size")
