"""One epoch's passes under a ``Workflow``: ``train_loop()`` and ``evaluate()``, each timed,
and the monitors ``self.track(...)`` hands them.

The first loader that ``train_loop`` tracks is the epoch's training pass: with
``checkpoint_every`` it goes through a ``ResumableLoader`` that saves mid-epoch every N batches,
and after an ``in_epoch`` checkpoint it continues at the next batch (RNG, loader position and
monitor as they were). Any other tracked loop gets a plain ``TrainingMonitor`` on the run.

Ctrl-C (``interrupt``, a :class:`~loopwise.train.interrupt.GracefulInterrupt`): after the first,
a tracked loop ends when it asks for its next batch (the step on the last one is complete) with
``on_interrupt(position, seconds, batches)``, which saves and raises ``KeyboardInterrupt``; the
position is where the training pass stood when its loader can resume mid-epoch (a
``ResumableSampler``), else None.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

from loopwise.distributed.errors import ResumeError
from loopwise.distributed.group import TrainGroup, set_sampler_epoch, shard_loader
from loopwise.distributed.loader import LoopPosition, ResumableLoader
from loopwise.distributed.rng import capture_rng_state, restore_rng_state
from loopwise.distributed.sampler import find_resumable_sampler
from loopwise.record.run import Run
from loopwise.train.interrupt import GracefulInterrupt
from loopwise.train.workflow.checks import check_track_options, clean_metrics
from loopwise.train.workflow.state import ResumePoint
from loopwise.train.workflow.trainer import Trainer
from loopwise.watch.monitor import TrainingMonitor


class EpochPasses:
    """The passes of one epoch at a time, and what a checkpoint needs from them: ``monitor``
    (the training pass's monitor) and ``epoch_rng`` (the RNG state when the pass began, kept
    with ``checkpoint_every``). ``on_checkpoint(position, train_seconds)`` saves mid-epoch.
    """

    def __init__(self, trainer: Trainer, *,
                 on_checkpoint: Callable[[LoopPosition, float], None],
                 on_interrupt: Callable[[LoopPosition | None, float, int], None] | None = None
                 ) -> None:
        self.trainer = trainer
        self.on_checkpoint = on_checkpoint
        self.on_interrupt = on_interrupt
        self.interrupt: GracefulInterrupt | None = None  # set while Workflow.run() trains
        self.monitor: TrainingMonitor[Any] | None = None
        self.epoch_rng: dict[str, Any] | None = None
        self._phase: str | None = None
        self._tracked = False
        self._resume: ResumePoint | None = None
        self._t0 = 0.0
        self.group: TrainGroup | None = None  # under torchrun: a TrainGroup (distributed.group)
        self._sharded: dict[int, tuple[Any, Any]] = {}  # id(loader) -> (loader, its shards)

    def train(self, pending: ResumePoint | None, *,
              every: int | None) -> tuple[dict[str, float], float]:
        """Run ``train_loop()`` (continuing an ``in_epoch`` ``pending``); return its metrics and
        seconds (including those before the checkpoint)."""
        self._phase = "train"
        self._tracked = False
        self.monitor = None
        before = 0.0
        if pending is not None and pending.phase == "in_epoch":
            self._resume = pending  # picked up by the first track() of train_loop
            before = pending.train_seconds
        if pending is not None and pending.phase == "in_epoch" and pending.epoch_rng:
            restore_rng_state(pending.epoch_rng)  # code before the loop draws as it did then
        self.epoch_rng = capture_rng_state()  # an in_epoch save (periodic, or a Ctrl-C) keeps it
        self._t0 = time.perf_counter() - before
        try:
            result = self.trainer.train_loop()
        finally:
            self._phase = None
        if self._resume is not None:
            self._resume = None
            raise ResumeError("the checkpoint was written in the middle of an epoch, but "
                              "train_loop() did not iterate a loader through self.track(); "
                              "mid-epoch resume needs the same loop as the run that saved it")
        return clean_metrics(result, "train_loop()"), time.perf_counter() - self._t0

    def evaluate(self) -> tuple[dict[str, float], float]:
        """Run ``evaluate()``; return its metrics and seconds."""
        self._phase = "evaluate"
        t0 = time.perf_counter()
        metrics = {(k if k.startswith("val_") else f"val_{k}"): v  # Keras's rule: val_<name>
                   for k, v in clean_metrics(self.trainer.evaluate(), "evaluate()").items()}
        seconds = time.perf_counter() - t0
        self._phase = None
        return metrics, seconds

    def track(self, iterable: Iterable[Any], desc: str | None, options: dict[str, Any], *,
              run: Run | None, epoch: int, every: int | None,
              system: bool) -> TrainingMonitor[Any]:
        """The monitor for ``self.track(iterable, desc, **options)`` in epoch ``epoch``."""
        check_track_options(options)
        options.setdefault("system", system)
        options.setdefault("epoch_summary", False)  # the Workflow records the epoch's values
        if self._phase == "evaluate":
            options.setdefault("phase", "val")  # validation batches are no training steps
        if self.group is not None:  # each rank its share of the loader, this epoch's order
            iterable = self._shard(iterable)
            set_sampler_epoch(iterable, max(epoch - 1, 0))
        align_sampler(iterable, epoch)
        first_train = self._phase == "train" and not self._tracked
        if first_train:
            self._tracked = True
        pending = self._resume if first_train else None
        asked = self._asked()
        if first_train and (every is not None or pending is not None
                            or (asked is not None and _resumable(iterable))):
            self._resume = None
            monitor = resumable_monitor(iterable, desc, options, run=run, every=every,
                                        on_checkpoint=self._mid_epoch, resume=pending,
                                        stop=asked, on_stop=self._stop_at)
        else:
            if asked is not None:  # ends at the next batch after a Ctrl-C (no position)
                if "total" not in options and isinstance(iterable, Sized):
                    options["total"] = len(iterable)
                iterable = _interruptible(iterable, asked, self._stop_at)
            monitor = TrainingMonitor(iterable, desc, run=run, **options)
        if first_train:
            self.monitor = monitor
        return monitor

    def _shard(self, iterable: Iterable[Any]) -> Iterable[Any]:
        """A DataLoader split over the ranks (made once per loader; training loaders padded so
        that every rank takes as many steps); any other iterable as it is."""
        from torch.utils.data import DataLoader, IterableDataset

        if self.group is None or not isinstance(iterable, DataLoader) or isinstance(
                iterable.dataset, IterableDataset):
            return iterable
        known = self._sharded.get(id(iterable))
        if known is None or known[0] is not iterable:
            known = (iterable, shard_loader(iterable, self.group, what="the loader given to "
                                            "self.track()", seed=0,
                                            pad=self._phase != "evaluate"))
            self._sharded[id(iterable)] = known
        sharded: Iterable[Any] = known[1]
        return sharded

    def _mid_epoch(self, position: LoopPosition) -> None:
        self.on_checkpoint(position, time.perf_counter() - self._t0)

    def _asked(self) -> Callable[[], bool] | None:
        """Whether a Ctrl-C asked the loop to stop (None: no graceful Ctrl-C now)."""
        guard, handler = self.interrupt, self.on_interrupt
        if guard is None or not guard.active or handler is None:
            return None
        return lambda: guard.requested

    def _stop_at(self, position: LoopPosition | int) -> None:
        """End the pass after a Ctrl-C: ``on_interrupt`` saves (a position: mid-epoch) and
        raises; ``position``: a LoopPosition, or the batches taken (no mid-epoch save)."""
        assert self.on_interrupt is not None
        training = self._phase == "train"
        at = position if isinstance(position, LoopPosition) and training else None
        done = position.batches_done if isinstance(position, LoopPosition) else position
        self.on_interrupt(at, time.perf_counter() - self._t0 if training else 0.0,
                          done if training else -1)


def _resumable(iterable: Iterable[Any]) -> bool:
    """Whether ``iterable`` can be resumed mid-pass (a DataLoader over a ResumableSampler)."""
    try:
        find_resumable_sampler(iterable)
    except TypeError:
        return False
    return True


def _interruptible(iterable: Iterable[Any], asked: Callable[[], bool],
                   on_stop: Callable[[int], None]) -> Iterator[Any]:
    """``iterable``'s items; when the loop asks for the next one after a Ctrl-C (``asked()``),
    ``on_stop(items taken)`` raises instead (no batch is fetched for nothing)."""
    taken = 0
    iterator = iter(iterable)
    while True:
        if taken and asked():
            on_stop(taken)
        try:
            item = next(iterator)
        except StopIteration:
            return
        yield item
        taken += 1


def align_sampler(iterable: Iterable[Any], epoch: int) -> None:
    """Give the ``ResumableSampler`` behind ``iterable`` (if any) the epoch's pass order."""
    try:
        sampler, _ = find_resumable_sampler(iterable)
    except TypeError:
        sampler = None
    if sampler is not None:  # the pass order depends on (seed, epoch) only
        sampler.set_epoch(max(epoch - 1, 0))


def resumable_monitor(iterable: Iterable[Any], desc: str | None, options: dict[str, Any], *,
                      run: Run | None, every: int | None,
                      on_checkpoint: Callable[[LoopPosition], None],
                      resume: ResumePoint | None, stop: Callable[[], bool] | None = None,
                      on_stop: Callable[[LoopPosition], None] | None = None
                      ) -> TrainingMonitor[Any]:
    """A monitor over a ``ResumableLoader`` that calls ``on_checkpoint`` every ``every`` batches;
    with ``resume`` (an ``in_epoch`` checkpoint) it continues at the next batch, the monitor's
    saved state restored. ``stop``, ``on_stop``: a Ctrl-C's end of the pass (``ResumableLoader``).
    """
    loader = ResumableLoader(iterable,  # type: ignore[arg-type]
                             every=every,
                             on_checkpoint=on_checkpoint,
                             resume=None if resume is None else resume.loop,
                             stop=stop, on_stop=on_stop)
    monitor: TrainingMonitor[Any] = TrainingMonitor(loader, desc, run=run, **options)
    if resume is not None and resume.monitor is not None:
        monitor.load_state_dict(resume.monitor)
    return monitor
