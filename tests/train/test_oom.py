"""Batch splitting and out-of-memory recognition."""

from __future__ import annotations

from collections import namedtuple

import torch

from loopwise.train.step.oom import batch_size_of, free_memory, is_oom, split_batch


def test_split_tuple_in_halves_with_shares() -> None:
    x, y = torch.arange(10).reshape(5, 2), torch.arange(5)
    halves = split_batch((x, y))
    assert halves is not None
    (first, w1), (second, w2) = halves
    assert first[0].tolist() == x[:3].tolist() and second[1].tolist() == [3, 4]
    assert (w1, w2) == (0.6, 0.4)
    assert isinstance(first, tuple)


def test_split_dicts_namedtuples_and_passes_other_values() -> None:
    Batch = namedtuple("Batch", "x y")
    halves = split_batch({"x": torch.ones(4, 3), "meta": "keep", "scale": torch.tensor(2.0),
                          "pair": Batch(torch.zeros(4), torch.ones(4))})
    assert halves is not None
    part = halves[1][0]
    assert part["x"].shape == (2, 3) and part["meta"] == "keep"
    assert part["scale"].item() == 2.0  # a 0-dim tensor is shared, not split
    assert isinstance(part["pair"], Batch) and part["pair"].x.shape == (2,)


def test_unsplittable_batches() -> None:
    assert split_batch((torch.ones(1, 3), torch.ones(1))) is None  # a single row
    assert split_batch(["text", 3]) is None  # no tensor
    assert batch_size_of({"a": "b"}) is None
    assert batch_size_of([torch.tensor(1.0), torch.ones(7, 2)]) == 7


def test_is_oom() -> None:
    assert is_oom(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_oom(RuntimeError("CUDA error: out of memory"))
    assert not is_oom(RuntimeError("shape mismatch"))
    assert not is_oom(ValueError("out of memory"))
    free_memory()  # no CUDA here: only collects garbage, must not fail
