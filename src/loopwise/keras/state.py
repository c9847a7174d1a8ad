"""What a Keras checkpoint holds, and putting it back (used by :mod:`loopwise.keras.callback`).

The state is plain data that ``CheckpointManager`` saves and loads with
``torch.load(weights_only=True)``: the model's variables (weights, non-trainable statistics and
the states of its seed generators, e.g. a ``Dropout``'s) and the optimizer's variables (its
iteration count, learning rate and slots) as torch tensors in ``model.variables`` /
``optimizer.variables`` order, their paths to check that order on load, Keras's global seed
generator when one was made, and the global RNG states of Python, NumPy and torch
(``loopwise.distributed.sampler``). Keras itself is never imported here: the model is given.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from loopwise.distributed.rng import capture_rng_state, restore_rng_state

FORMAT = "keras-state-1"


def _tensors(variables: Sequence[Any]) -> list[torch.Tensor]:
    out = []
    for var in variables:
        array = np.asarray(var.numpy() if hasattr(var, "numpy") else var)
        try:
            out.append(torch.from_numpy(np.array(array, order="C", copy=True)))
        except TypeError as exc:
            raise TypeError(f"cannot checkpoint Keras variable {getattr(var, 'path', var)!r} "
                            f"of dtype {array.dtype}: torch has no such dtype") from exc
    return out


def _paths(variables: Sequence[Any]) -> list[str]:
    return [str(getattr(v, "path", getattr(v, "name", i))) for i, v in enumerate(variables)]


def _global_seed_generator() -> Any:
    """Keras's global seed generator when one was made (never making one: that would draw
    from Python's RNG and change what follows)."""
    seed_module = sys.modules.get("keras.src.random.seed_generator")
    state_module = sys.modules.get("keras.src.backend.common.global_state")
    if seed_module is None or state_module is None:
        return None
    name = getattr(seed_module, "GLOBAL_SEED_GENERATOR", "global_seed_generator")
    return state_module.get_global_attribute(name)


def capture(model: Any) -> dict[str, Any]:
    """The model's and its optimizer's variables and the RNG states, as plain data."""
    optimizer = getattr(model, "optimizer", None)
    opt_vars = list(optimizer.variables) if optimizer is not None and optimizer.built else []
    seed = _global_seed_generator()
    return {
        "format": FORMAT,
        "model": _tensors(model.variables),
        "model_paths": _paths(model.variables),
        "optimizer": _tensors(opt_vars),
        "optimizer_paths": _paths(opt_vars),
        "global_seed": _tensors([seed.state]) if seed is not None else [],
        "rng": capture_rng_state(),
    }


def _assign(variables: Sequence[Any], values: Sequence[torch.Tensor], paths: Sequence[str],
            what: str) -> None:
    if len(variables) != len(values):
        raise ValueError(f"the checkpoint holds {len(values)} {what} variables, this model has "
                         f"{len(variables)}; resume with the same model and optimizer")
    for var, value, path in zip(variables, values, paths, strict=True):
        if tuple(var.shape) != tuple(value.shape):
            raise ValueError(f"{what} variable {path!r} has shape {tuple(value.shape)} in the "
                             f"checkpoint and {tuple(var.shape)} here; resume with the same "
                             "model and optimizer")
        var.assign(value.numpy())


def restore(model: Any, state: Mapping[str, Any]) -> None:
    """Put back a state from :func:`capture` (the same model and optimizer, compiled)."""
    if state.get("format") != FORMAT:
        raise ValueError(f"not a loopwise Keras checkpoint (format {state.get('format')!r}, "
                         f"expected {FORMAT!r})")
    _assign(model.variables, state["model"], state["model_paths"], "model")
    optimizer = getattr(model, "optimizer", None)
    if state["optimizer"]:
        if optimizer is None:
            raise ValueError("the checkpoint holds optimizer variables but the model has no "
                             "optimizer; call model.compile(optimizer=...) before fit")
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        _assign(optimizer.variables, state["optimizer"], state["optimizer_paths"], "optimizer")
    seed = _global_seed_generator() if state["global_seed"] else None
    if seed is not None:
        seed.state.assign(state["global_seed"][0].numpy())
    restore_rng_state(state["rng"])
