"""One optimisation step of the fit engine, kept lean: AMP, the non-finite guard, gradient
clipping with the gradient norm recorded, and out-of-memory recovery.

The step path reads nothing back from a GPU: losses, gradient norms and correct counts are kept
as device tensors and read in one go by :meth:`StepEngine.drain` (the fit loop calls it when the
display refreshes and at the end of an epoch). On the CPU reading a value is cheap, so the loss
is read at once (it also serves the non-finite check). On CUDA the non-finite guard has to read
one flag per step to decide whether to step; ``max_nonfinite=0`` turns the guard off and with
it that read.

Out of memory (``torch.OutOfMemoryError``): free cached memory, record an event, run the same
batch again as two halves whose gradients accumulate (each half's loss weighted by its share of
the rows, which is exact for mean-reduced losses), and only when a half fails too skip the batch
with another event. ``max_oom_skips`` batches skipped in a row raise :class:`OutOfMemoryStop`
(an epoch of nothing but skipped batches trains nothing: it must not pass for a result).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from loopwise.record.recorder import EventSink
from loopwise.train.step.amp import Amp
from loopwise.train.step.nonfinite import NonFiniteGuard
from loopwise.train.step.oom import (
    OutOfMemoryStop,
    batch_size_of,
    free_memory,
    is_oom,
    oom_stop_message,
    split_batch,
)
from loopwise.utils.validate import check_int
from loopwise.watch.convert import to_floats


@dataclass
class Drained:
    """Per-step values read since the last drain (one entry per completed step)."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    correct: list[int] = field(default_factory=list)


def looks_like_classification(output: Any, target: Any) -> bool:
    """Logits (rows x classes, classes > 1) against integer class indices (rows,)."""
    return (isinstance(output, torch.Tensor) and isinstance(target, torch.Tensor)
            and output.dim() == 2 and output.shape[1] > 1 and target.dim() == 1
            and not target.is_floating_point() and not target.is_complex()
            and output.shape[0] == target.shape[0])


def unpack(batch: Any) -> tuple[tuple[Any, ...], Any]:
    """``(inputs..., target)`` of a batch; anything else is a clear error."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return tuple(batch[:-1]), batch[-1]
    what = type(batch).__name__
    if isinstance(batch, (tuple, list)):
        what += f" of length {len(batch)}"
    raise TypeError(f"fit expects batches of (inputs, targets) (or (input1, ..., targets)); "
                    f"got a {what}. Make the dataset return pairs")


class StepEngine:
    """Runs training steps on ``model`` with ``optimizer``; see the module docstring."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 loss_fn: Callable[..., torch.Tensor], *, device: torch.device, amp: Amp,
                 grad_clip: float | None, guard: NonFiniteGuard,
                 events: EventSink | None = None, classification: bool | None = None,
                 max_oom_skips: int = 5) -> None:
        check_int(max_oom_skips, what="max_oom_skips", minimum=1,
                  hint="batches in a row skipped for out of memory before training stops")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.device = device
        self.amp = amp
        self.grad_clip = grad_clip
        self.guard = guard
        self.events = events
        self.classification = classification
        self.step = 0  # completed steps (taken or skipped), the global step
        self.skipped = 0
        self.max_oom_skips = max_oom_skips
        self.oom_in_row = 0  # batches skipped for OOM since the last one that trained
        self._oom_size: int | None = None
        self._host = device.type == "cpu"
        self._params = [p for g in optimizer.param_groups for p in g["params"]]
        self._values: list[Any] = []
        self._steps: list[int] = []
        self._sizes: list[int] = []
        self._norms: list[torch.Tensor] = []
        self._correct: list[Any] = []

    # -- the step path ---------------------------------------------------------------------
    def train_step(self, batch: Any) -> bool:
        """One optimisation step on ``batch``; False when the step was skipped."""
        self.optimizer.zero_grad(set_to_none=True)
        oom = False
        try:
            taken = self._whole(batch)
        except Exception as exc:  # only OOM is handled; anything else propagates unchanged
            if not is_oom(exc):
                raise
            oom = True
        if oom:  # outside the except block, so the failed attempt's frames are released
            taken = self._split(batch)
        if taken:
            self._update()
        else:
            self.skipped += 1
        if not (oom and not taken):
            self.oom_in_row = 0
        self.step += 1
        return taken

    def _forward(self, batch: Any) -> tuple[torch.Tensor, Any, int, Any]:
        inputs, target = unpack(batch)
        if not self._host:
            inputs = tuple(x.to(self.device, non_blocking=True)
                           if isinstance(x, torch.Tensor) else x for x in inputs)
            target = target.to(self.device, non_blocking=True)
        with self.amp.autocast():
            output = self.model(*inputs)
            loss = self.loss_fn(output, target)
        value = loss.item() if self._host else loss.detach()
        correct = None
        if self.classification is None:  # decided once, on the first batch
            self.classification = looks_like_classification(output, target)
        if self.classification:
            hits = (output.detach().argmax(dim=1) == target).sum()
            correct = hits.item() if self._host else hits
        return loss, value, int(target.shape[0]), correct

    def _finite(self, value: Any) -> bool:
        if not self.guard.enabled:
            return True
        if self._host:
            return math.isfinite(value)
        return bool(torch.isfinite(value))  # the guard's one read per step on a GPU

    def _whole(self, batch: Any) -> bool:
        loss, value, size, correct = self._forward(batch)
        if not self._finite(value):
            return self._reject(value)
        self.amp.backward(loss)
        self._record(value, size, correct)
        return True

    def _split(self, batch: Any) -> bool:
        size = batch_size_of(batch)
        free_memory()
        self.optimizer.zero_grad(set_to_none=True)
        halves = split_batch(batch)
        self._event("oom", f"out of memory on a batch of {size} at step {self.step}; "
                    + ("retrying it in two halves" if halves else "it cannot be split"),
                    "warning", {"step": self.step, "batch_size": size})
        if halves is None:
            return self._skip_oom(size)
        values: list[tuple[Any, float]] = []
        corrects: list[Any] = []
        failed = False
        try:
            for half, share in halves:
                loss, value, _, correct = self._forward(half)
                if not self._finite(value):
                    self.optimizer.zero_grad(set_to_none=True)
                    return self._reject(value)
                self.amp.backward(loss * share)
                values.append((value, share))
                corrects.append(correct)
                del loss
        except Exception as exc:
            if not is_oom(exc):
                raise
            failed = True
        if failed:
            self.optimizer.zero_grad(set_to_none=True)
            free_memory()
            return self._skip_oom(size)
        total = sum(v * share for v, share in values)
        correct_total = None if corrects[0] is None else sum(corrects)
        self._record(total, int(size or 0), correct_total)
        self._event("oom_recovered", f"batch of {size} at step {self.step} trained as two "
                    "halves with gradient accumulation", "info", {"step": self.step})
        return True

    def _skip_oom(self, size: int | None) -> bool:
        self._event("oom_skipped", f"batch of {size} at step {self.step} skipped: out of memory "
                    "even in halves; lower batch_size", "warning",
                    {"step": self.step, "batch_size": size})
        self.oom_in_row += 1
        self._oom_size = size
        if self.oom_in_row >= self.max_oom_skips:
            first = self.step - self.oom_in_row + 1
            raise OutOfMemoryStop(oom_stop_message(self.oom_in_row, first, self.step, size,
                                                   limit=self.max_oom_skips))
        return False

    def end_epoch(self, batches: int) -> None:
        """Raise :class:`OutOfMemoryStop` when each of the epoch's ``batches`` was skipped for
        out of memory: the epoch trained nothing and has no loss to report."""
        if batches > 0 and self.oom_in_row >= batches:
            raise OutOfMemoryStop(oom_stop_message(batches, self.step - batches, self.step - 1,
                                                   self._oom_size, limit=None))

    def _reject(self, value: Any) -> bool:
        shown = value if self._host else float(value)  # a rare event: reading it now is fine
        self._event("nonfinite_loss", f"loss was {shown} at step {self.step}; step skipped",
                    "warning", {"step": self.step, "in_row": self.guard.in_row + 1})
        return self.guard.observe(False, step=self.step, value=shown)

    def _update(self) -> None:
        if self.guard.in_row:
            self.guard.observe(True, step=self.step)
        if self.grad_clip is not None:
            self.amp.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self._params, self.grad_clip)
            self._norms.append(norm.detach())
        self.amp.step(self.optimizer)

    def _record(self, value: Any, size: int, correct: Any) -> None:
        self._values.append(value)
        self._steps.append(self.step)
        self._sizes.append(size)
        if correct is not None:
            self._correct.append(correct)

    def _event(self, kind: str, message: str, level: str, data: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.log_event(kind, message, level=level, data=data)

    # -- reading back ------------------------------------------------------------------------
    def drain(self) -> Drained:
        """Read every value recorded since the last drain (one device read in all)."""
        out = Drained(steps=self._steps, sizes=self._sizes)
        out.losses = _floats(self._values)
        out.grad_norms = _floats(self._norms)
        out.correct = [int(c) for c in _floats(self._correct)]
        self._values, self._steps, self._sizes = [], [], []
        self._norms, self._correct = [], []
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "skipped": self.skipped, "guard": self.guard.state_dict(),
                "amp": self.amp.state_dict(), "oom_in_row": self.oom_in_row}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("step", "skipped", "guard", "amp"):
            if key not in state:
                raise KeyError(f"step engine state is missing {key!r}; was it saved by fit?")
        self.step = int(state["step"])
        self.skipped = int(state["skipped"])
        self.guard.load_state_dict(state["guard"])
        self.amp.load_state_dict(state["amp"])
        self.oom_in_row = int(state.get("oom_in_row", 0))  # absent in older checkpoints


def _floats(values: list[Any]) -> list[float]:
    return to_floats(values)  # the one converter: device values read in one transfer
