"""Seeding, and RNG states for fit's checkpoints: the global generators (through
:func:`loopwise.train.resume.sampler.capture_rng_state`) plus the generator a DataLoader
shuffles with."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from loopwise.train.resume.sampler import capture_rng_state, restore_rng_state


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture(generator: torch.Generator | None = None) -> dict[str, Any]:
    """The global RNG states, plus ``generator``'s (e.g. a DataLoader's) when given."""
    return {"global": capture_rng_state(),
            "generator": generator.get_state() if generator is not None else None}


def restore(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Put back states from :func:`capture` (``generator`` too, when both have one)."""
    if "global" not in state:
        raise KeyError("the RNG state has no 'global' part; was it saved by loopwise.fit?")
    restore_rng_state(state["global"])
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"])


def loader_generator(loader: Any) -> torch.Generator | None:
    """The torch.Generator a DataLoader shuffles with, when it has one."""
    for sampler in (getattr(loader, "sampler", None),
                    getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        gen = getattr(sampler, "generator", None)
        if isinstance(gen, torch.Generator):
            return gen
    return None
