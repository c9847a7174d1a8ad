"""Keras batch logs -> the record's per-step columns (used by :mod:`loopwise.keras.callback`).

Keras hands ``on_train_batch_end`` the epoch's running value of each metric (``loss`` after
batch 5 is the mean over batches 1..5). The record holds per-step values (``docs/record.md``),
so a metric Keras computes as a mean (its ``Mean`` metrics: the loss tracker, accuracy and every
``MeanMetricWrapper``) is turned back into the value of the step: with ``c`` batches done and
running mean ``m``, the batches between two logs averaged ``(c1*m1 - c0*m0) / (c1 - c0)``. This
is exact when the batches weigh the same (Keras weighs by batch size: the last, smaller batch
of an epoch comes out approximate; float32 rounding of Keras's running mean is amplified by
``c``, ~1e-7 * c relative). A metric that is not a mean (AUC, Precision...) has no per-step
value; it is recorded as Keras reports it (the value over the epoch so far).

The hook may run on Keras's callback thread (asynchronous dispatch), several at once and out of
order: :meth:`BatchLogs.add` only appends under a lock; :meth:`BatchLogs.take` sorts by batch,
converts what is not a float yet in one pass (a torch tensor per device in one transfer) and
de-averages.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Column = tuple[list[int], list[float], list[float]]


HOLD_BACK = 32  # batch indices kept back from a hand-over during the epoch (hooks in flight)


class BatchLogs:
    """The batch logs of one epoch, between two hand-overs to the run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[int, float, Mapping[str, Any]]] = []
        self._last: dict[str, tuple[int, float]] = {}  # key -> (batches done, running mean)
        self._done = 0  # batches of this epoch already handed over
        self._seen = 0  # batches of this epoch added (the highest batch index + 1)
        self._take_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, batch: int, wall: float, logs: Mapping[str, Any], *,
            advance: Callable[[int], object] | None = None) -> None:
        """Keep batch ``batch``'s logs (0-based index of the last batch they cover); call
        ``advance(n)`` (under the lock) with the number of batches this adds to the epoch."""
        with self._lock:
            self._items.append((batch, wall, logs))
            if batch + 1 > self._seen:
                if advance is not None:
                    advance(batch + 1 - self._seen)
                self._seen = batch + 1

    def new_epoch(self) -> None:
        with self._lock:
            self._items = []
            self._last = {}
            self._done = 0
            self._seen = 0

    @property
    def batches_done(self) -> int:
        """Batches of this epoch handed over so far."""
        return self._done

    def take(self, *, base_step: int, is_mean: Callable[[str], bool],
             final: bool = False) -> dict[str, Column]:
        """Per-step columns ``{key: (global steps, wall times, values)}`` of the logs kept since
        the last call (batch ``b`` is global step ``base_step + b + 1``); values are floats.

        Batch hooks may run on Keras's thread pool and finish out of order, so a hand-over
        during the epoch keeps back the last ``HOLD_BACK`` batch indices (a hook for one of them
        may still be running); ``final`` (the epoch's end: Keras has waited for every hook)
        takes everything."""
        with self._take_lock:  # one hand-over at a time: they share the running means
            return self._take(base_step, is_mean, final)

    def _take(self, base_step: int, is_mean: Callable[[str], bool],
              final: bool) -> dict[str, Column]:
        with self._lock:
            items, self._items = self._items, []
            if not final and items:
                cut = self._seen - HOLD_BACK
                kept = [item for item in items if item[0] >= cut]
                items = [item for item in items if item[0] < cut]
                self._items = kept
        if not items:
            return {}
        items.sort(key=lambda item: item[0])
        rows = [dict(logs) for _, _, logs in items]
        to_floats(rows)
        columns: dict[str, Column] = {}
        for (batch, wall, _), row in zip(items, rows, strict=True):
            done = batch + 1
            if done <= self._done:
                continue  # a batch seen twice: keep the first
            for key, value in row.items():
                if not isinstance(value, float):
                    continue  # a log that is no number (Keras keeps such values as they are)
                column = columns.get(key)
                if column is None:
                    column = columns[key] = ([], [], [])
                column[0].append(base_step + done)
                column[1].append(wall)
                column[2].append(self._step_value(key, done, value, is_mean))
            self._done = done
        return columns

    def _step_value(self, key: str, done: int, mean: float,
                    is_mean: Callable[[str], bool]) -> float:
        if not is_mean(key):
            return mean
        before, before_mean = self._last.get(key, (0, 0.0))
        self._last[key] = (done, mean)
        if before == 0 or not math.isfinite(before_mean):
            return mean
        return (done * mean - before * before_mean) / (done - before)


def to_floats(rows: Iterable[dict[str, Any]]) -> None:
    """Replace, in place, every value that is not a float by its float: Python and NumPy
    numbers directly, torch and TensorFlow tensors per device in one transfer (the one
    converter's ``read_tensor_slots``), other backend tensors (a JAX array) through NumPy. A
    value that is no number is left as it is."""
    rows = list(rows)
    torch_slots: list[tuple[dict[str, Any], str]] = []
    for row in rows:
        for key, value in row.items():
            if type(value) is float:
                continue
            if type(value).__module__.startswith(("torch", "tensorflow")):
                torch_slots.append((row, key))  # the one converter's batched device read
                continue
            row[key] = _number(value)
    if torch_slots:
        from loopwise.watch.convert import read_tensor_slots

        read_tensor_slots(torch_slots)


def _number(value: Any) -> Any:
    """A number Keras logged, as a float (the one converter); anything else as it is."""
    if isinstance(value, bool):
        return value
    from loopwise.watch.convert import to_float

    try:
        return to_float("", value)
    except (TypeError, ValueError):
        return value
