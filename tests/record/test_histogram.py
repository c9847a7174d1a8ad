"""Binning a histogram: counts, edges, quantiles, non-finite values and the stored size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopwise.record.histogram import (
    bin_values,
    check_bins,
    host_values,
    pack_counts,
    unpack_counts,
)


def test_counts_match_numpy_and_quantiles_follow_the_distribution() -> None:
    values = np.random.default_rng(0).normal(size=100_000).astype(np.float32)
    hist = bin_values(values, 64)
    ref, edges = np.histogram(values.astype(np.float64), bins=64)
    assert list(hist.counts) == ref.tolist()
    assert hist.edges() == pytest.approx(edges.tolist())
    assert hist.total == 100_000 and hist.mean() == pytest.approx(values.mean(), abs=1e-6)
    q05, q50, q95 = hist.quantiles([0.05, 0.5, 0.95])
    assert q05 == pytest.approx(np.quantile(values, 0.05), abs=0.05)
    assert q50 == pytest.approx(0.0, abs=0.05)
    assert q95 == pytest.approx(np.quantile(values, 0.95), abs=0.05)


def test_a_tensor_bigger_than_a_chunk_bins_like_a_small_one() -> None:
    values = np.random.default_rng(1).uniform(-3, 5, size=3_000_001)
    hist = bin_values(values, 32)
    ref, _ = np.histogram(values, bins=32)
    assert list(hist.counts) == ref.tolist() and hist.lo == values.min()
    assert hist.sum_sq == pytest.approx(float(np.dot(values, values)))


def test_nan_and_inf_are_counted_apart_and_a_constant_gets_one_bin() -> None:
    hist = bin_values(np.array([1.0, np.nan, np.inf, -np.inf, -np.inf, 2.0]), 4)
    assert (hist.nan, hist.neg_inf, hist.pos_inf, hist.total) == (1, 2, 1, 2)
    assert sum(hist.counts) == 2 and (hist.lo, hist.hi) == (1.0, 2.0)
    const = bin_values(np.full(10, 3.0), 8)
    assert sum(const.counts) == 10 and const.lo == const.hi == 3.0
    assert const.edges() == [3.0] * 9 and const.quantiles([0.0, 0.5, 1.0]) == [3.0] * 3
    empty = bin_values(np.array([np.nan]), 8)
    assert empty.total == 0 and all(math.isnan(q) for q in empty.quantiles([0.5]))


def test_counts_pack_to_four_bytes_each_unless_one_needs_eight() -> None:
    assert len(pack_counts([1] * 64)) == 256
    assert unpack_counts(pack_counts([1, 2**33]), 2) == (1, 2**33)


def test_bad_arguments_are_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"bins must be an int from 1 to 1024 \(64, the default, .*\), got 0"):
        check_bins(0)
    with pytest.raises(ValueError, match="bins must be an int"):
        check_bins(True)
    with pytest.raises(TypeError, match=r"histogram 'w' takes a tensor, a NumPy array or a "
                       r"sequence of numbers, got str"):
        host_values("abc", name="w")
    with pytest.raises(TypeError, match=r"histogram 'w' needs real numbers, got values of dtype"):
        host_values(np.array([1 + 2j]), name="w")
    with pytest.raises(ValueError, match=r"histogram 'w' got no values \(an empty array\)"):
        host_values([], name="w")


def test_the_caller_s_array_is_copied_so_later_changes_do_not_leak_in() -> None:
    values = np.zeros(10)
    copy = host_values(values, name="w")
    values += 5
    assert bin_values(copy, 4).hi == 0.0
