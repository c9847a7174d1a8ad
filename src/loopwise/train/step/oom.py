"""Out-of-memory helpers: recognise the error, free cached memory, split a batch in halves, and
the error that stops training after too many skipped batches (:class:`OutOfMemoryStop`).

The retry policy itself (whole batch, then two halves with gradient accumulation, then skip)
lives in :mod:`loopwise.train.step.engine`; this module holds the pieces it needs.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from typing import Any

import torch


class OutOfMemoryStop(torch.OutOfMemoryError):
    """Training stopped: ``max_oom_skips`` batches in a row were skipped for out of memory.

    A ``torch.OutOfMemoryError``, so code that already catches those catches this one too.
    """


def oom_stop_message(count: int, first_step: int, last_step: int, size: int | None, *,
                     limit: int | None) -> str:
    """The text of :class:`OutOfMemoryStop`: what happened and what to change. ``limit`` is
    ``max_oom_skips`` when that was reached; None when a whole epoch trained nothing."""
    rows = f" (the last batch had {size} rows)" if size is not None else ""
    what = (f"{count} batches in a row" if limit is not None
            else f"every batch of the epoch ({count})")
    text = (f"out of memory on {what}, steps {first_step} to {last_step}, even split in "
            f"halves: training stopped. Lower batch_size{rows} or the model's memory use")
    if limit is not None:
        text += f"; max_oom_skips (now {limit}) sets how many batches in a row may be skipped"
    return text


def is_oom(exc: BaseException) -> bool:
    """True for ``torch.OutOfMemoryError`` and the older "out of memory" RuntimeErrors."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_memory() -> None:
    """Collect garbage and return cached CUDA blocks to the driver (no-op without CUDA)."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        torch.cuda.empty_cache()


def batch_size_of(batch: Any) -> int | None:
    """The leading dimension shared by the batch's tensors, or None when there is none."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() > 0 else None
    items: list[Any]
    if isinstance(batch, Mapping):
        items = list(batch.values())
    elif isinstance(batch, (list, tuple)):
        items = list(batch)
    else:
        return None
    for item in items:
        size = batch_size_of(item)
        if size is not None:
            return size
    return None


def split_batch(batch: Any) -> list[tuple[Any, float]] | None:
    """Two halves of ``batch`` along dim 0, each with its share of the rows.

    Tensors with the batch's leading size are split; other values (scalars, strings, tensors of
    another size) are passed to both halves unchanged. Returns None when the batch has fewer
    than two rows or no tensor to split.
    """
    size = batch_size_of(batch)
    if size is None or size < 2:
        return None
    cut = (size + 1) // 2
    first = _take(batch, size, 0, cut)
    second = _take(batch, size, cut, size)
    return [(first, cut / size), (second, (size - cut) / size)]


def _take(batch: Any, size: int, start: int, stop: int) -> Any:
    if isinstance(batch, torch.Tensor):
        if batch.dim() > 0 and batch.shape[0] == size:
            return batch[start:stop]
        return batch
    if isinstance(batch, Mapping):
        return type(batch)({k: _take(v, size, start, stop) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(_take(v, size, start, stop) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_take(v, size, start, stop) for v in batch)
    return batch
