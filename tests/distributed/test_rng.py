"""RNG capture/restore including a DataLoader's own generator."""

from __future__ import annotations

import io
import random

import numpy as np
import torch
from torch.utils.data import DataLoader

from loopwise.distributed import rng


def test_capture_restore_replays_every_generator_and_survives_weights_only_load() -> None:
    loader = DataLoader(list(range(10)), batch_size=5, shuffle=True,
                        generator=torch.Generator().manual_seed(3))
    gen = rng.loader_generator(loader)
    assert gen is not None
    state = rng.capture(gen)
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    first = (random.random(), np.random.rand(), torch.rand(1).item(), [b.tolist() for b in loader])
    rng.restore(state, gen)
    again = (random.random(), np.random.rand(), torch.rand(1).item(), [b.tolist() for b in loader])
    assert first == again


def test_loader_without_generator_and_seed_everything() -> None:
    assert rng.loader_generator(DataLoader([1, 2], shuffle=False)) is None
    assert rng.loader_generator(object()) is None
    rng.seed_everything(5)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    rng.seed_everything(5)
    assert a == (random.random(), np.random.rand(), torch.rand(1).item())


def test_python_s_state_is_one_tensor_and_a_tuple_saved_before_still_restores() -> None:
    state = rng.capture_rng_state()
    version, words, gauss = state["python"]
    assert isinstance(words, torch.Tensor) and words.shape == (625,)  # pickled as one object
    first = random.random()
    old_form = {**state, "python": (version, tuple(words.tolist()), gauss)}  # older checkpoints
    rng.restore_rng_state(old_form)
    assert random.random() == first
    rng.restore_rng_state(state)
    assert random.random() == first
