"""Histograms in the record: what the caller hands over (a copy), how it is binned (off the
training thread) and how a binned histogram is stored (a few hundred bytes).

A histogram is ``bins`` equal-width bins between the finite minimum ``lo`` and maximum ``hi``
of the values (edges are ``lo + i * (hi - lo) / bins``: only ``lo``, ``hi`` and the counts are
stored; a histogram of one repeated value has every edge at it, its count in the middle
bin), plus the count, sum and sum of squares of the finite values and the number of NaN,
``-inf`` and ``+inf`` values. Counts are stored as little-endian uint32 (uint64 when one count
does not fit): 64 bins take 256 bytes.

The caller's side never waits for a device: :func:`host_values` copies a NumPy array (or
anything ``numpy.asarray`` reads on the CPU), and takes a :class:`HostCopy` (the loop side's
asynchronous device-to-host copy, :func:`loopwise.watch.hostcopy.host_copy`) as it is; the
binning thread waits for the copy to land (``ready()``) and bins it.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from loopwise.utils.validate import check_int

MAX_BINS = 1024
CHUNK = 1 << 20  # values binned at a time
_BIG_ENDIAN = sys.byteorder == "big"


@runtime_checkable
class HostCopy(Protocol):
    """Values on their way to host memory: ``ready()`` is True once ``result()`` can be read
    without waiting for a device (never a device sync)."""

    def ready(self) -> bool: ...

    def result(self) -> Any: ...


@dataclass(frozen=True)
class Histogram:
    """One binned histogram (see the module docstring)."""

    lo: float
    hi: float
    counts: tuple[int, ...]
    total: int  # finite values
    sum: float
    sum_sq: float
    nan: int = 0
    neg_inf: int = 0
    pos_inf: int = 0

    @property
    def bins(self) -> int:
        return len(self.counts)

    def edges(self) -> list[float]:
        """The ``bins + 1`` bin edges."""
        width = (self.hi - self.lo) / self.bins if self.bins else 0.0
        return [self.lo + i * width for i in range(self.bins)] + [self.hi]

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        """The values at the quantiles ``qs`` (0..1) of the finite values, interpolated
        linearly inside a bin (NaN when the histogram holds no finite value)."""
        if self.total <= 0:
            return [math.nan for _ in qs]
        edges = self.edges()
        out = []
        for q in qs:
            target = min(max(q, 0.0), 1.0) * self.total
            seen = 0
            value = self.hi
            for i, count in enumerate(self.counts):
                if count and seen + count >= target:
                    frac = (target - seen) / count
                    value = edges[i] + frac * (edges[i + 1] - edges[i])
                    break
                seen += count
            out.append(value)
        return out

    def mean(self) -> float:
        return self.sum / self.total if self.total else math.nan

    def to_json(self) -> dict[str, Any]:
        """A JSON object (exports and views)."""
        return {"lo": self.lo, "hi": self.hi, "counts": list(self.counts), "total": self.total,
                "sum": self.sum, "sum_sq": self.sum_sq, "nan": self.nan,
                "neg_inf": self.neg_inf, "pos_inf": self.pos_inf}


def check_bins(bins: object) -> int:
    return check_int(bins, what="bins", minimum=1, maximum=MAX_BINS,
                     hint="64, the default, shows a distribution well")


def host_values(values: object, *, name: str) -> Any:
    """What the binning thread will read: a :class:`HostCopy` as is, else a NumPy copy of
    ``values`` (a NumPy array, a sequence of numbers, a CPU tensor). A tensor on a device is
    refused here (the record has no torch): the loop side copies it without a sync."""
    if isinstance(values, HostCopy):
        return values
    if isinstance(values, Histogram):
        return values
    device = getattr(values, "device", None)
    kind = getattr(device, "type", None)
    if kind is not None and kind != "cpu":
        raise TypeError(
            f"histogram {name!r}: the tensor is on {device}; log it through "
            "TrainingMonitor.log_histogram / TrainingSession.log_histogram / Run.log_histogram "
            "of a loopwise.watch.host_copy(tensor), which copy it without a device sync")
    if isinstance(values, (str, bytes, bool)) or values is None or isinstance(values, dict):
        raise TypeError(f"histogram {name!r} takes a tensor, a NumPy array or a sequence of "
                        f"numbers, got {type(values).__name__}")
    detach = getattr(values, "detach", None)
    if callable(detach):  # a CPU tensor: no autograd, a copy NumPy can read
        values = detach()
        if str(getattr(values, "dtype", "")) in ("torch.bfloat16", "torch.float16"):
            values = values.float()  # type: ignore[attr-defined]
        values = values.numpy()  # type: ignore[attr-defined]  # (NumPy copies it below)
    try:
        arr = np.array(values, copy=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"histogram {name!r} takes a tensor, a NumPy array or a sequence of "
                        f"numbers; {type(values).__name__} could not be read: {exc}") from None
    return check_array(arr, name=name)


def check_array(arr: Any, *, name: str) -> Any:
    arr = np.asarray(arr)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"histogram {name!r} needs real numbers, got values of dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"histogram {name!r} got no values (an empty array); log at least one")
    return arr


def bin_values(values: Any, bins: int) -> Histogram:
    """Bin ``values`` (a NumPy array of real numbers) into ``bins`` equal bins, in chunks of
    ``CHUNK`` values (a 100M-value tensor needs no float64 copy of itself)."""
    arr = np.asarray(values).reshape(-1)
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 4:
        arr = arr.astype(np.float32)
    chunks = [arr[i:i + CHUNK] for i in range(0, arr.size, CHUNK)]
    nan = neg = pos = total = 0
    lo, hi, total_sum, total_sq = math.inf, -math.inf, 0.0, 0.0
    finite_chunks = []
    for chunk in chunks:
        if chunk.dtype.kind == "f":
            mask = np.isfinite(chunk)
            if not mask.all():
                bad = chunk[~mask]
                n_nan = int(np.count_nonzero(np.isnan(bad)))
                n_neg = int(np.count_nonzero(bad < 0))
                nan, neg, pos = nan + n_nan, neg + n_neg, pos + bad.size - n_nan - n_neg
                chunk = chunk[mask]
        if chunk.size == 0:
            continue
        wide = chunk.astype(np.float64)
        finite_chunks.append(wide if len(chunks) == 1 else chunk)
        lo, hi = min(lo, float(wide.min())), max(hi, float(wide.max()))
        total += int(chunk.size)
        total_sum += float(wide.sum())
        total_sq += float(np.dot(wide, wide))
    if total == 0:
        return Histogram(0.0, 0.0, tuple([0] * bins), 0, 0.0, 0.0, nan, neg, pos)
    counts = np.zeros(bins, dtype=np.int64)
    if lo == hi:  # one value: every count in the middle bin, the edges all at it
        counts[bins // 2] = total
    else:
        scale = bins / (hi - lo)
        for chunk in finite_chunks:
            idx = ((chunk.astype(np.float64) - lo) * scale).astype(np.int64)
            np.minimum(idx, bins - 1, out=idx)
            counts += np.bincount(idx, minlength=bins)
    return Histogram(lo, hi, tuple(counts.tolist()), total, total_sum, total_sq, nan, neg, pos)


def pack_counts(counts: Sequence[int]) -> bytes:
    """Counts as little-endian uint32 (uint64 when one does not fit)."""
    arr = array("I" if max(counts, default=0) < 2**32 else "Q", counts)
    if arr.itemsize not in (4, 8):  # pragma: no cover - exotic platforms
        arr = array("Q", counts)
    if _BIG_ENDIAN:  # pragma: no cover
        arr.byteswap()
    return arr.tobytes()


def unpack_counts(blob: bytes, bins: int) -> tuple[int, ...]:
    width = len(blob) // bins if bins else 4
    arr = array("I" if width == 4 else "Q")
    arr.frombytes(blob)
    if _BIG_ENDIAN:  # pragma: no cover
        arr.byteswap()
    return tuple(arr)
