"""Evaluation pass of the fit engine: mean loss (and accuracy) over a loader, one device read."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from loopwise.train.step.amp import Amp
from loopwise.train.step.engine import unpack
from loopwise.watch.convert import to_floats


def evaluate(model: torch.nn.Module, loader: Iterable[Any], loss_fn: Callable[..., torch.Tensor],
             *, device: torch.device, amp: Amp, classification: bool,
             on_batch: Callable[[int, torch.Tensor, torch.Tensor | None, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> dict[str, float]:
    """``{"loss": mean, "accuracy": fraction (classification only)}`` over ``loader``.

    The loss of each batch is weighted by its rows, so a short last batch counts for what it
    holds. ``on_batch(index, loss_sum, correct, rows)`` (running sums; ``correct`` None for
regression) is called after each batch with
    device values (a display converts them only when it redraws). ``should_stop()`` ends the
    pass early (Ctrl-C). The model's train/eval mode is restored.
    """
    was_training = model.training
    model.eval()
    wide = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
    total = torch.zeros((), dtype=wide, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    rows = 0
    move = device.type != "cpu"
    try:
        with torch.inference_mode():
            for i, batch in enumerate(loader):
                inputs, target = unpack(batch)
                if move:
                    inputs = tuple(x.to(device, non_blocking=True)
                                   if isinstance(x, torch.Tensor) else x for x in inputs)
                    target = target.to(device, non_blocking=True)
                with amp.autocast():
                    output = model(*inputs)
                    loss = loss_fn(output, target)
                n = int(target.shape[0])
                total += loss.detach().to(wide) * n
                if classification:
                    correct += (output.argmax(dim=1) == target).sum()
                rows += n
                if on_batch is not None:
                    on_batch(i, total, correct if classification else None, rows)
                if should_stop is not None and should_stop():
                    break
    finally:
        model.train(was_training)
    if rows == 0:
        raise ValueError("the evaluation loader yielded no batches; pass a loader with data "
                         "(or None to skip evaluation)")
    values = to_floats([total, correct.to(wide)])  # the one read of the pass
    out = {"loss": values[0] / rows}
    if classification:
        out["accuracy"] = values[1] / rows
    return out
