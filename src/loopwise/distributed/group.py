"""The one group object of training under ``torchrun`` (``docs/distributed.md``), used alike by
``fit()``, ``Workflow.run()``, ``TrainingMonitor`` and ``TrainingSession``.

- :func:`train_group`: the group of several ranks a training entry point or a loop runs in
  (None in one process, or with ``LOOPWISE_DISTRIBUTED=0``);
- :meth:`TrainGroup.attach_monitor`, :meth:`TrainGroup.attach_session`: a loop's values
  exchanged every :attr:`TrainGroup.every` steps (never per step), the same on every rank;
  :meth:`TrainGroup.on_failure`: no more collectives once a loop of this rank failed;
- :meth:`TrainGroup.decide`: rank 0 decides (which run folder, start or resume), broadcasts
  its decision, and every other rank follows it; an error on rank 0 stops every rank (fit and
  Workflow open their runs this way);
- :meth:`TrainGroup.mean_values`: values every rank computed (validation means, timings)
  averaged over the ranks, so that every rank takes the same decisions (early stopping,
  ``ReduceLROnPlateau``, the best checkpoint);
- :func:`wrap_model`, :func:`rank_device`, :func:`shard_loader`: the model in
  ``DistributedDataParallel`` on this rank's device, a loader sharded by a
  :class:`~loopwise.distributed.sampler.ResumableSampler`;
- :class:`RankRun`: the run as a rank other than 0 sees it: the run folder's path and the
  global step, and nothing written.

Every exchange goes through the loop reducer's one ``all_gather``
(:meth:`~loopwise.distributed.reducer.Reducer.exchange`).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from loopwise.distributed.failure import GroupState
from loopwise.distributed.reducer import Reducer, loop_reducer

__all__ = ["RankRun", "TrainGroup", "rank_device", "set_sampler_epoch", "shard_loader",
           "train_group", "wrap_model"]

T = TypeVar("T")


@dataclass
class TrainGroup:
    """This process's place in the group of ``world_size`` ranks, and its exchanges."""

    reducer: Reducer
    rank: int = field(init=False)
    world_size: int = field(init=False)

    def __post_init__(self) -> None:
        self.rank, self.world_size = self.reducer.rank, self.reducer.world_size

    @property
    def leader(self) -> bool:
        """Rank 0: the rank that records and writes files."""
        return self.rank == 0

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (picklable), on every rank."""
        return self.reducer.exchange({"v": value if self.rank == 0 else None})[0]["v"]

    def share(self, value: Any, error: BaseException | None, *, what: str) -> Any:
        """Rank 0's ``value`` on every rank; when rank 0 failed with ``error``, that error is
        raised there and a RuntimeError naming it on every other rank."""
        shown = (None if error is None
                 else "".join(traceback.format_exception_only(error)).strip())
        sent = self.broadcast({"value": value, "error": shown})
        if error is not None:
            raise error
        if sent["error"] is not None:
            raise RuntimeError(f"{what} failed on rank 0 (see its output): {sent['error']}")
        return sent["value"]

    def decide(self, choose: Callable[[], T], *, share: Callable[[T], Any],
               follow: Callable[[Any], T], what: str) -> T:
        """Rank 0 decides, broadcasts, the others follow: on rank 0 ``choose()``, whose result is
        returned there and sent to every rank as ``share(result)`` (picklable); every other rank
        returns ``follow(shared)``. When ``choose()`` raises on rank 0, its error is raised
        there and a RuntimeError naming it (and ``what``) on every other rank."""
        if not self.leader:
            return follow(self.share(None, None, what=what))
        try:
            result = choose()
        except Exception as exc:
            self.share(None, exc, what=what)  # raises it here, and an error on every rank
            raise
        self.share(share(result), None, what=what)
        return result

    def barrier(self) -> None:
        """Every rank waits here for the others (after rank 0 wrote a file they will read)."""
        self.reducer.exchange({})

    def mean_values(self, values: Mapping[str, float]) -> dict[str, float]:
        """``values`` averaged over the ranks (one exchange); the same on every rank."""
        return self.reducer.reduce_values(values)

    # -- a loop's exchanges (TrainingMonitor, TrainingSession) -------------------------------
    @property
    def every(self) -> int:
        """Steps between two exchanges of a loop (agreed by every rank at each exchange)."""
        return self.reducer.every

    @property
    def state(self) -> GroupState:
        """This process's failure state and system-sample buffer (shared by its loops)."""
        return self.reducer.state

    def attach_monitor(self, acc: Any, iterable: Iterable[Any],
                       refresh: Callable[[float], None], *, train: bool) -> Iterable[Any]:
        """A TrainingMonitor's accumulator and iterable: the iterable to loop over, which calls
        ``refresh(now)`` every :attr:`every` steps (the only exchanges of the step path)."""
        return self.reducer.attach_monitor(acc, iterable, refresh, train=train)

    def attach_session(self, rec: Any) -> None:
        """A TrainingSession's recorder: an exchange every :attr:`every` steps, the phase-end
        values averaged over the ranks."""
        self.reducer.attach_session(rec)

    def on_failure(self, error: str | None) -> str | None:
        """A loop or entry point of this rank ends failed or interrupted: no more collectives;
        the error to record (every failed rank's traceback, the earliest first)."""
        return self.reducer.on_failure(error)


def train_group(*, target_s: float = 0.5) -> TrainGroup | None:
    """The group of several ranks this process trains in, or None (one process, a group of
    one, or ``LOOPWISE_DISTRIBUTED=0``). ``target_s``: about how often (seconds) a loop's
    values are exchanged (the step count between exchanges follows rank 0's rate)."""
    reducer = loop_reducer(target_s=target_s)
    if reducer is None or reducer.world_size < 2:
        return None
    return TrainGroup(reducer)


def rank_device(device: Any) -> Any:
    """This rank's device: ``cuda`` without an index becomes ``cuda:LOCAL_RANK`` (set as the
    current device); other devices are kept."""
    import torch

    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def wrap_model(model: Any, device: Any) -> Any:
    """``model`` (already on ``device``) in ``DistributedDataParallel``; a model already
    wrapped is kept as it is."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def shard_loader(loader: Any, group: TrainGroup, *, what: str, seed: int, pad: bool) -> Any:
    """``loader`` with each rank taking its share of every pass: rebuilt around a sharded
    :class:`~loopwise.distributed.sampler.ResumableSampler` (shuffled when the loader
    shuffled); a loader already sharded (a ``DistributedSampler``, or a sharded
    ``ResumableSampler``) is kept. ``pad``: every rank gets as many samples (training)."""
    from torch.utils.data import (
        BatchSampler,
        DataLoader,
        DistributedSampler,
        IterableDataset,
        RandomSampler,
        SequentialSampler,
    )

    from loopwise.distributed.sampler import ResumableSampler
    from loopwise.distributed.skip import loader_options

    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        raise TypeError(
            f"under torchrun, {what} must be a torch DataLoader over a map-style dataset (it is "
            f"split over the ranks by a sampler), got {type(loader).__name__}; or give it a "
            f"DistributedSampler yourself")
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler) or (
            isinstance(sampler, ResumableSampler) and sampler.num_replicas > 1):
        return loader
    if loader.batch_sampler is not None and type(loader.batch_sampler) is not BatchSampler:
        raise TypeError(
            f"under torchrun, {what} has a custom batch sampler "
            f"({type(loader.batch_sampler).__name__}) that cannot be split over the ranks; "
            f"use DataLoader(dataset, batch_size=..., shuffle=...) or a DistributedSampler")
    if isinstance(sampler, ResumableSampler):
        shuffle, seed = sampler.shuffle, sampler.seed
    elif isinstance(sampler, (RandomSampler, SequentialSampler)):
        shuffle = isinstance(sampler, RandomSampler)
    else:
        raise TypeError(
            f"under torchrun, {what}'s sampler ({type(sampler).__name__}) cannot be split over "
            f"the ranks; use shuffle=True/False, a ResumableSampler or a DistributedSampler")
    sharded = ResumableSampler(loader.dataset, shuffle=shuffle, seed=seed,  # type: ignore[arg-type]
                               rank=group.rank, num_replicas=group.world_size, pad=pad)
    options = loader_options(loader)
    if loader.num_workers > 0:
        options["persistent_workers"] = loader.persistent_workers
    if loader.batch_size is None:
        return DataLoader(loader.dataset, batch_size=None, sampler=sharded, **options)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sharded,
                      drop_last=loader.drop_last, **options)


def set_sampler_epoch(loader: Any, epoch: int) -> None:
    """Give the sampler behind ``loader`` (a ``DistributedSampler`` or ``ResumableSampler``)
    the pass ``epoch`` (0-based), as every rank must before each pass."""
    for sampler in (getattr(loader, "sampler", None),
                    getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        if callable(getattr(sampler, "set_epoch", None)):
            sampler.set_epoch(epoch)  # type: ignore[union-attr]
            return


class RankRun:
    """The run of a training entry point on a rank other than 0 (a
    :class:`~loopwise.record.recorder.TrainingRun`): its folder's path (rank 0's, shared), its
    global step, and no record (rank 0 records for every rank)."""

    def __init__(self, path: str | os.PathLike[str], *, global_step: int = 0) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.id = ""
        self.global_step = int(global_step)
        self.epoch = 0
        self.closed = False

    def advance(self, steps: int = 1) -> int:
        self.global_step += int(steps)
        return self.global_step

    def restore_step(self, step: int, *, epoch: int | None = None) -> None:
        self.global_step = int(step)
        if epoch is not None:
            self.epoch = int(epoch)

    def log_scalars(self, values: Mapping[str, float], *, step: int,
                    wall_time: float | None = None) -> None:
        """Nothing: rank 0 records."""

    def log_epoch(self, epoch: int, values: Mapping[str, float], *, step: int | None = None
                  ) -> None:
        """Nothing: rank 0 records."""

    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Mapping[str, Any] | None = None) -> None:
        """Nothing: rank 0 records."""

    def log_histogram(self, name: str, values: Any, **_: Any) -> None:
        """Nothing: rank 0 records."""

    def log_image(self, name: str, image: Any, **_: Any) -> None:
        """Nothing: rank 0 records."""

    def log_text(self, name: str, text: str, **_: Any) -> None:
        """Nothing: rank 0 records."""

    def set_config(self, config: Mapping[str, Any]) -> None:
        """Nothing: rank 0 records."""

    def set_info(self, **fields: Any) -> None:
        """Nothing: rank 0 records."""

    def add_exporter(self, exporter: Any) -> None:
        """Nothing: rank 0's run feeds the exporters."""

    def flush(self) -> None:
        """Nothing to flush."""

    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        self.closed = True
