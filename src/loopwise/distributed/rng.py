"""Random number generators for exact resume: seeding; the global generators' states
(:func:`capture_rng_state`: Python ``random``, NumPy's global generator, torch's CPU generator and
every CUDA device's, in a form ``torch.load(weights_only=True)`` accepts); and, for fit's
checkpoints, those plus the generator a DataLoader shuffles with (:func:`capture`)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from loopwise.distributed.errors import ResumeError


def capture_rng_state() -> dict[str, Any]:
    """The state of every generator a training loop usually draws from.

    CUDA states are captured only when CUDA has been initialised in this process (capturing
    would otherwise start a CUDA context for a CPU run); ``"cuda"`` is then None.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    cuda: list[torch.Tensor] | None = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        cuda = list(torch.cuda.get_rng_state_all())
    version, words, gauss = random.getstate()
    return {  # Python's 625 words as one tensor: pickled at once, not as 625 objects
        "python": (version, torch.tensor(words, dtype=torch.int64), gauss),
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": cuda,
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put every generator back to ``state`` (from :func:`capture_rng_state`)."""
    missing = [k for k in ("python", "numpy", "torch", "cuda") if k not in state]
    if missing:
        raise ResumeError(f"the saved RNG state lacks {', '.join(missing)}; "
                          "it was not written by loopwise.distributed.rng.capture_rng_state")
    cuda = state["cuda"]
    if cuda is not None:
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if len(cuda) != visible:
            raise ResumeError(
                f"the checkpoint holds RNG states for {len(cuda)} CUDA device(s) but this "
                f"process sees {visible}; resume with the same devices (CUDA_VISIBLE_DEVICES)"
            )
    py = state["python"]  # its words a tensor (or a tuple, as checkpoints before 2026-12-06)
    words = py[1].tolist() if isinstance(py[1], torch.Tensor) else py[1]
    random.setstate((py[0], tuple(words), py[2]))
    np_state = state["numpy"]
    np.random.set_state((np_state["name"], np_state["keys"].numpy().astype(np.uint32),
                         np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


# -- sampler -------------------------------------------------------------------------------


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
