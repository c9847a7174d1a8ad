"""The epoch loop behind :func:`loopwise.fit` (one object per call; use ``fit``).

Per epoch: train (the lean :class:`~loopwise.train.step.engine.StepEngine` path), drain the recorded
values when the display refreshes, validate, dispatch callbacks, keep the best weights,
checkpoint periodically. Ctrl-C (via :class:`~loopwise.train.interrupt.GracefulInterrupt`)
ends the current step, saves a checkpoint and raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch

from loopwise.distributed import rng
from loopwise.distributed.group import TrainGroup, set_sampler_epoch
from loopwise.distributed.skip import skip_batches
from loopwise.record.recorder import TrainingRun
from loopwise.train.callbacks.base import CallbackList, LoopState, StopRequest
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.evaluate import evaluate
from loopwise.train.fit.files import FitFiles
from loopwise.train.interrupt import GracefulInterrupt
from loopwise.train.step.amp import Amp
from loopwise.train.step.engine import StepEngine
from loopwise.train.step.nonfinite import NonFiniteGuard
from loopwise.watch.accumulator import LoopStats, StepAccumulator
from loopwise.watch.improvement import Improvement

REFRESH_S = 0.25  # seconds between reads of the recorded values (display + record)
FORMAT = "loopwise.fit"


class FitLoop:
    def __init__(self, *, model: torch.nn.Module, train_loader: Iterable[Any],
                 val_loader: Iterable[Any] | None, test_loader: Iterable[Any] | None,
                 loss_fn: Callable[..., torch.Tensor], optimizer: torch.optim.Optimizer,
                 config: TrainingConfig, callbacks: CallbackList, run: TrainingRun,
                 device: torch.device,
                 display: Any, logger: logging.Logger, files: FitFiles,
                 trained: torch.nn.Module | None = None, group: TrainGroup | None = None) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.group = group  # under torchrun: a TrainGroup (distributed.group)
        self.train_loader, self.val_loader, self.test_loader = train_loader, val_loader, test_loader
        self.config, self.callbacks, self.run, self.device = config, callbacks, run, device
        self.display, self.log, self.files = display, logger, files
        self.amp = Amp(device, enabled=config.use_mixed_precision)
        self.engine = StepEngine(trained if trained is not None else model, optimizer, loss_fn,
                                 device=device, amp=self.amp,
                                 grad_clip=config.grad_clip,
                                 guard=NonFiniteGuard(config.max_nonfinite), events=run,
                                 max_oom_skips=config.max_oom_skips)
        self.best = Improvement(mode="min")
        self.monitor = "val_loss" if val_loader is not None else "loss"
        self.history: list[dict[str, float]] = []
        self.clock = LoopStats()
        self.acc: StepAccumulator = display.accumulator  # the run's one step accumulator
        self.epoch = 0  # completed epochs
        self.resume_batch = 0  # batches already done in the epoch after ``epoch``
        self.partial: dict[str, Any] | None = None  # the running means, for a mid-epoch resume
        self.epoch_rng: dict[str, Any] | None = None  # RNG at the start of this epoch
        self._rng_before: dict[str, Any] | None = None  # restored just before iter(loader)
        self._rng_after: dict[str, Any] | None = None  # restored once the skipped batches are drawn
        self.stop: StopRequest | None = None

    # -- the loop ----------------------------------------------------------------------------
    def run_epochs(self, interrupt: GracefulInterrupt) -> None:
        state = LoopState(epoch=self.epoch, step=self.engine.step, model=self.model,
                          optimizer=self.optimizer, run=self.run)
        self.stop = self.callbacks.dispatch("on_train_begin", state)
        self.display.start_training()
        for epoch in range(self.epoch + 1, self.config.epochs + 1):
            if self.stop is not None:
                break
            if interrupt.requested:  # Ctrl-C came between epochs
                self._interrupt(epoch, batches_done=0)
            started = time.perf_counter()
            state.epoch, state.metrics = epoch, {}
            self.stop = self.callbacks.dispatch("on_epoch_begin", state) or self.stop
            self.display.start_epoch(epoch)
            metrics = self._train_epoch(epoch, interrupt)
            if self.val_loader is not None:
                self.display.start_validation()
                val = evaluate(self.model, self.val_loader, self.loss_fn, device=self.device,
                               amp=self.amp, classification=bool(self.engine.classification),
                               on_batch=self._val_progress, should_stop=lambda: interrupt.requested)
                self.display.finish_validation_epoch()
                if interrupt.requested:  # validation cut short: redo it on resume
                    self._interrupt(epoch, batches_done=-1)
                metrics.update({f"val_{k}": v for k, v in val.items()})
            metrics["lr"] = float(self.optimizer.param_groups[0]["lr"])
            metrics["epoch_time_s"] = time.perf_counter() - started
            if self.group is not None:  # the same values (and so decisions) on every rank
                metrics = self.group.mean_values(metrics)
            state.metrics, state.step = metrics, self.engine.step
            self.stop = self.callbacks.dispatch("on_evaluate", state) or self.stop
            self._record_epoch(epoch, metrics)
            self.stop = self.callbacks.dispatch("on_epoch_end", state) or self.stop
            self.display.print_epoch_summary()
            self.epoch, self.epoch_rng = epoch, None
            every = self.config.checkpoint_every
            if every and epoch % every == 0:
                self.save_checkpoint(periodic=True)
        if interrupt.requested:  # Ctrl-C during the last epoch's bookkeeping: still honoured
            self._interrupt(self.epoch + 1, batches_done=0)
        if self.stop is not None:
            message = f"training stopped after epoch {self.epoch}: {self.stop.reason}"
            self.run.log_event("early_stop", message, data={"source": self.stop.source,
                                                            "epoch": self.epoch})
            self.log.info("%s (requested by %s)", message, self.stop.source)
        self.callbacks.dispatch("on_train_end", state)

    def _train_epoch(self, epoch: int, interrupt: GracefulInterrupt) -> dict[str, float]:
        self.engine.model.train()  # the model the steps run (in DDP under torchrun)
        skip, self.resume_batch = self.resume_batch, 0
        gen = rng.loader_generator(self.train_loader)
        if self._rng_before is not None:
            rng.restore(self._rng_before, gen)
        self.epoch_rng = rng.capture(gen)
        if self.group is not None:  # every rank's share of this epoch's order
            set_sampler_epoch(self.train_loader, epoch - 1)
        self.acc.reset_means()
        if skip and self.partial is not None:
            self.acc.averages.load_state_dict(self.partial)
        self.partial = None
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.run.log_scalars({"lr": lr}, step=self.engine.step + 1)
        engine, clock, perf = self.engine, self.clock, time.perf_counter
        # resume: the sampler skips the batches done before the interrupt (drawn with the same
        # RNG, so the same order; none is loaded), then the RNG of the interrupt comes back
        source, start = skip_batches(self.train_loader, skip)
        iterator = iter(source)
        start()
        index = skip
        if self._rng_after is not None:
            rng.restore(self._rng_after, gen)
        self._rng_before = self._rng_after = None
        if skip:  # show where the interrupted epoch stood (the session counts steps from here)
            self._show(skip)
        refresh_at = perf() + REFRESH_S
        sync = self.display.group  # under torchrun: refresh on a step count, never the clock
        if sync is not None:
            refresh_at = math.inf
            next_sync = index + sync.every
        mark = perf()
        for batch in iterator:
            got = perf()
            engine.train_step(batch)
            index += 1
            done = perf()
            clock.steps += 1
            clock.data_wait_s += got - mark
            clock.body_s += done - got
            mark = done
            if interrupt.requested:
                self._refresh(index)
                self._interrupt(epoch, batches_done=index)
            if done >= refresh_at:
                self._refresh(index)
                refresh_at = perf() + REFRESH_S
                mark = perf()
            elif sync is not None and index >= next_sync:
                self._refresh(index)
                next_sync = index + sync.every
                mark = perf()
        self._refresh(index)
        engine.end_epoch(index - skip)  # every batch skipped for out of memory: an error
        self.display.finish_training_epoch()
        means = self.acc.means()
        out = {"loss": means.get("loss", float("nan"))}
        if engine.classification:
            out["accuracy"] = means.get("accuracy", float("nan"))
        return out

    def _refresh(self, index: int) -> None:
        """Hand the steps done since the last refresh to the accumulator (every step's own
        loss, weighted by its batch size in the running mean); update the display."""
        d = self.engine.drain()
        if not d.steps:
            return
        n = len(d.steps)
        columns: dict[str, list[float]] = {"loss": d.losses}
        weights: dict[str, list[float]] = {"loss": [float(x) for x in d.sizes]}
        if self.engine.classification and len(d.correct) == n:
            columns["accuracy"] = [c / b for c, b in zip(d.correct, d.sizes, strict=True)]
            weights["accuracy"] = weights["loss"]
        if len(d.grad_norms) == n:
            columns["grad_norm"] = d.grad_norms
        self.acc.add_steps([s + 1 for s in d.steps], columns, weights=weights)
        self.acc.flush()
        self._show(index)

    def _show(self, index: int) -> None:
        means = self.acc.means()
        loss = means.get("loss", float("nan"))
        acc = means.get("accuracy", float("nan")) if self.engine.classification else None
        self.display.update_training_progress(index, loss, accuracy=acc, record=False)

    def _val_progress(self, index: int, loss_sum: torch.Tensor, correct: torch.Tensor | None,
                      rows: int) -> None:
        acc = None if correct is None else correct / rows
        self.display.update_validation_progress(index + 1, loss_sum / rows, accuracy=acc)

    def _record_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.history.append({"epoch": float(epoch), **metrics})
        # the session records epoch/train_* and epoch/val_*; these two are fit's own
        self.run.log_epoch(epoch, {"lr": metrics["lr"], "seconds": metrics["epoch_time_s"]},
                           step=self.engine.step)
        shown = ", ".join(f"{k}={v:.6g}" for k, v in metrics.items())
        self.log.info("epoch %d/%d: %s", epoch, self.config.epochs, shown)
        value = metrics.get(self.monitor, float("nan"))
        if self.best.update(value, epoch):
            self.files.save_best_model(self.model, epoch=epoch)
            self.run.log_event("best_model", f"new best {self.monitor} {value:.6g} at epoch "
                               f"{epoch}", data={"epoch": epoch, self.monitor: value})

    # -- checkpoints -------------------------------------------------------------------------
    def _interrupt(self, epoch: int, *, batches_done: int) -> None:
        """Save the state reached (mid-epoch) and raise KeyboardInterrupt."""
        if batches_done == -1:  # interrupted in validation: all training batches are done
            batches_done = _length(self.train_loader) or 0
        self.resume_batch = batches_done
        path = self.save_checkpoint(periodic=False, epoch_in_progress=epoch)
        where = (f"in epoch {epoch} after {batches_done} batches" if batches_done else
                 f"after epoch {epoch - 1}")
        message = f"interrupted by Ctrl-C {where}; checkpoint saved to {path}"
        self.run.log_event("interrupted", message, level="warning",
                           data={"epoch": epoch, "batch": batches_done, "checkpoint": str(path)})
        self.log.warning(message)
        raise KeyboardInterrupt(message)

    def state_dict(self, *, mid_epoch: bool) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": 1, "config": self.config.to_dict(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "engine": self.engine.state_dict(), "epoch": self.epoch,
            "batch": self.resume_batch if mid_epoch else 0,
            "partial": self.acc.averages.state_dict() if mid_epoch else None,
            "classification": self.engine.classification,
            "history": self.history, "best": self.best.state_dict(),
            "callbacks": self.callbacks.state_dict(), "session": self._session_state(mid_epoch),
            "rng": rng.capture(rng.loader_generator(self.train_loader)),
            "epoch_rng": self.epoch_rng if mid_epoch else None,
            "world_size": 1 if self.group is None else self.group.world_size,
        }

    def _session_state(self, mid_epoch: bool) -> dict[str, Any]:
        """The display's state as of the last completed epoch (a resumed epoch starts anew)."""
        state = dict(self.display.state_dict())
        state["epoch"] = self.epoch
        if mid_epoch:
            state["global_step"] = self.engine.step - self.resume_batch
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != FORMAT:
            raise ValueError("the checkpoint was not written by loopwise.fit; cannot resume")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.engine.load_state_dict(state["engine"])
        self.engine.classification = state["classification"]
        self.best.load_state_dict(state["best"])
        self.callbacks.load_state_dict(state["callbacks"])
        self.history = [dict(h) for h in state["history"]]
        self.epoch, self.resume_batch = int(state["epoch"]), int(state["batch"])
        self.partial = state["partial"]
        self.display.load_state_dict(state["session"])
        self.acc.restart_at(self.engine.step)
        if self.resume_batch and state["epoch_rng"] is not None:
            # replay the interrupted epoch's data order, then continue from the saved RNG
            self._rng_before, self._rng_after = state["epoch_rng"], state["rng"]
        else:
            self._rng_before = state["rng"]

    def save_checkpoint(self, *, periodic: bool, epoch_in_progress: int | None = None) -> Any:
        state = self.state_dict(mid_epoch=not periodic)
        return self.files.save_checkpoint(state, step=self.engine.step, epoch=self.epoch,
                                          periodic=periodic, in_progress=epoch_in_progress)

    def evaluate_test(self) -> dict[str, float] | None:
        if self.test_loader is None:
            return None
        return evaluate(self.model, self.test_loader, self.loss_fn, device=self.device,
                        amp=self.amp, classification=bool(self.engine.classification))


def _length(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None
