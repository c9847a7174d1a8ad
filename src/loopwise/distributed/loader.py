"""One pass over a DataLoader that can be checkpointed and resumed (Workflow's
``checkpoint_every``): ``ResumableLoader`` counts the batches the loop has consumed (not the ones
prefetched), calls a checkpoint hook every N batches, and on resume replays the RNG states around
the creation of the data iterator so that the resumed pass is bit-identical to the uninterrupted
one; ``LoopPosition`` is where a pass stands."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader

from loopwise.distributed.errors import ResumeError
from loopwise.distributed.rng import capture_rng_state, restore_rng_state
from loopwise.distributed.sampler import find_resumable_sampler
from loopwise.distributed.skip import skip_batches  # the one skip (fit's too)
from loopwise.utils.validate import check_optional_int

__all__ = ["LoopPosition", "ResumableLoader"]


@dataclass(frozen=True)
class LoopPosition:
    """Where a pass over a loader stands: its sampler epoch, the batches already consumed,
    and the RNG state from just before the pass's data iterator was created."""

    epoch: int
    batches_done: int
    batch_size: int
    rng_at_start: dict[str, Any]

    def to_state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batches_done": self.batches_done,
                "batch_size": self.batch_size, "rng_at_start": self.rng_at_start}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> LoopPosition:
        for key in ("epoch", "batches_done", "batch_size", "rng_at_start"):
            if key not in state:
                raise ResumeError(f"the saved loop position lacks {key!r}")
        return cls(epoch=int(state["epoch"]), batches_done=int(state["batches_done"]),
                   batch_size=int(state["batch_size"]), rng_at_start=dict(state["rng_at_start"]))


class ResumableLoader:
    """One pass over ``loader`` that can be checkpointed every ``every`` batches and resumed.

    ``on_checkpoint(position)`` runs after ``every``-th consumed batch, when the loop asks for the
    next one (so the step on the last batch is complete), never after the last batch. With
    ``resume`` (a position and the RNG state saved with it) the pass restarts at that batch.
    ``stop``: asked after each consumed batch (but the last); when it is true, ``on_stop`` gets
    the position (to save it) and the pass ends with the exception it raises (a Ctrl-C).
    """

    def __init__(
        self,
        loader: DataLoader[Any],
        *,
        every: int | None = None,
        on_checkpoint: Callable[[LoopPosition], None] | None = None,
        resume: tuple[LoopPosition, Mapping[str, Any]] | None = None,
        stop: Callable[[], bool] | None = None,
        on_stop: Callable[[LoopPosition], None] | None = None,
    ) -> None:
        every = check_optional_int(every, what="checkpoint_every", minimum=1, hint="batches")
        self.loader = loader
        self.sampler, self.batch_size = find_resumable_sampler(loader)
        if resume is not None and resume[0].batch_size != self.batch_size:
            raise ResumeError(
                f"the checkpoint was written with batch_size={resume[0].batch_size}, the loader "
                f"now has batch_size={self.batch_size}; resume with the same batch size"
            )
        self.every = every
        self.on_checkpoint = on_checkpoint
        self.stop, self.on_stop = stop, on_stop
        self._resume = resume
        self.batches_done = 0 if resume is None else resume[0].batches_done

    def __len__(self) -> int:
        return len(self.loader) - self.batches_done

    def __iter__(self) -> Iterator[Any]:
        resume, self._resume = self._resume, None
        if resume is None:
            rng_at_start = capture_rng_state()
            done = 0
        else:
            position = resume[0]
            rng_at_start = position.rng_at_start
            restore_rng_state(rng_at_start)  # the iterator draws its base seed from torch's RNG
            self.sampler.set_epoch(position.epoch)
            done = position.batches_done
        source, start = skip_batches(self.loader, done if resume is not None else 0)
        epoch = self.sampler.epoch
        iterator = iter(source)
        start()
        if resume is not None:
            restore_rng_state(resume[1])
        total = len(self.loader)  # batches in a full pass
        for batch in iterator:
            yield batch
            done += 1
            self.batches_done = done
            if (self.every is not None and self.on_checkpoint is not None
                    and done % self.every == 0 and done < total):
                self.on_checkpoint(LoopPosition(epoch=epoch, batches_done=done,
                                                batch_size=self.batch_size,
                                                rng_at_start=rng_at_start))
            if self.stop is not None and self.on_stop is not None and done < total \
                    and self.stop():
                self.on_stop(LoopPosition(epoch=epoch, batches_done=done,
                                          batch_size=self.batch_size, rng_at_start=rng_at_start))
        self.batches_done = 0
