"""One scalar series (steps, wall times, values, epochs) and what is done to a whole series:
the min/max downsampling every view uses, and the epoch of each point."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

from loopwise.utils.validate import check_int

__all__ = ["Series", "downsample", "epochs_at", "one_per_step"]


@dataclass(frozen=True)
class Series:
    """One scalar series: ``steps``, ``times`` (Unix seconds), ``values`` and ``epochs``, equal
    lengths: every point carries its global step, wall time and epoch (docs/record.md).

    The columns are ``array.array`` objects (indexable, cheap); ``to_numpy()`` gives arrays.
    """

    key: str
    steps: array[int]
    times: array[float]
    values: array[float]
    epochs: array[int] = field(default_factory=lambda: array("q"))

    def __len__(self) -> int:
        return len(self.values)

    def to_numpy(self) -> tuple[Any, Any, Any]:
        import numpy as np

        return (np.frombuffer(self.steps, dtype=np.int64), np.frombuffer(self.times),
                np.frombuffer(self.values))



def sorted_union(columns: list[Any]) -> Any:
    """Every value of the int64 numpy arrays ``columns``, sorted, once: the steps of a run's
    wide table, the labels of its epochs. By sorting (numpy's hashed ``unique`` is several
    times slower on millions of steps), and no work when every column is the same sorted one.
    """
    import numpy as np

    first = columns[0] if columns else np.zeros(0, dtype=np.int64)
    if (len(first) < 2 or bool(np.all(first[1:] > first[:-1]))) and all(
            c is first or np.array_equal(c, first) for c in columns):  # the usual run
        return first
    every = np.sort(np.concatenate(columns))
    keep = np.ones(len(every), dtype=bool)
    keep[1:] = every[1:] != every[:-1]
    return every[keep]


def downsample(series: Series, max_points: int) -> Series:
    """Reduce a series to at most ``max_points`` points keeping every bucket's extremes.

    Method (min/max envelope): the points are cut into ``max_points // 2`` buckets of equal
    count; each bucket contributes its minimum and its maximum point, in step order. Spikes and
    dips therefore survive, which a stride or mean would hide. NaN values are skipped by the
    envelope (a bucket of only NaN keeps its first point). A series already short enough is
    returned as is.
    """
    max_points = check_int(max_points, what="max_points", minimum=2)
    n = len(series)
    if n <= max_points:
        return series
    import numpy as np

    steps, times, values = series.to_numpy()
    buckets = max_points // 2
    size = -(-n // buckets)  # ceil: equal-count buckets, the last one padded
    padded = np.full(buckets * size, np.nan)
    padded[:n] = values
    grid = padded.reshape(buckets, size)
    nan = np.isnan(grid)
    base = np.arange(buckets) * size
    i_min = base + np.argmin(np.where(nan, np.inf, grid), axis=1)
    i_max = base + np.argmax(np.where(nan, -np.inf, grid), axis=1)
    keep = np.unique(np.concatenate([i_min, i_max]))
    idx = keep[keep < n]
    epochs = np.frombuffer(series.epochs, dtype=np.int64) if len(series.epochs) == n else None
    return Series(series.key, array("q", steps[idx].tobytes()), array("d", times[idx].tobytes()),
                  array("d", values[idx].tobytes()),
                  array("q") if epochs is None else array("q", epochs[idx].tobytes()))


def epochs_at(steps: array[int], ends: Series | None) -> array[int]:
    """The epoch of each point at ``steps``: the epoch in progress at that step, from the
    ``epoch`` series (value ``e`` at the global step where epoch ``e`` ended). A point at an
    end step belongs to the epoch that ended there; one after the last end to the next epoch;
    a run that never ended an epoch is in epoch 1."""
    import numpy as np

    at = np.frombuffer(steps, dtype=np.int64)
    if ends is None or not len(ends):
        return array("q", np.ones(len(at), dtype=np.int64).tobytes())
    end_steps = np.frombuffer(ends.steps, dtype=np.int64)
    end_epochs = np.frombuffer(ends.values, dtype=np.float64).astype(np.int64)
    order = np.argsort(end_steps, kind="stable")
    end_steps, end_epochs = end_steps[order], end_epochs[order]
    table = np.append(end_epochs, end_epochs[-1] + 1)
    idx = np.searchsorted(end_steps, at, side="left")
    return array("q", table[idx].tobytes())


def one_per_step(steps: array[int], times: array[float], values: array[float]
                 ) -> tuple[array[int], array[float], array[float]]:
    """The columns with each step once: where a step was logged again (a run resumed from a
    checkpoint older than the last step it logged) its later point wins, in the place of the
    later point. Columns whose steps never repeat are returned as they are."""
    import numpy as np

    at = np.frombuffer(steps, dtype=np.int64)
    if len(at) < 2 or bool((at[1:] > at[:-1]).all()):
        return steps, times, values
    _, first_of_reversed = np.unique(at[::-1], return_index=True)
    keep = np.sort(len(at) - 1 - first_of_reversed)
    if len(keep) == len(at):
        return steps, times, values
    return (array("q", at[keep].tobytes()),
            array("d", np.frombuffer(times)[keep].tobytes()),
            array("d", np.frombuffer(values)[keep].tobytes()))
