"""Restoring a component from a checkpoint: ``load_state_dict`` with an error naming what could
not be restored, and the optimizer checks torch leaves out (parameter count, per-parameter state
shapes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from loopwise.distributed.errors import ResumeError

# optimizer state entries that have the shape of their parameter (Adam/AdamW/SGD/RMSprop/...)
_PARAM_SHAPED = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg",
                 "grad_avg", "acc_delta", "sum", "ax", "prev", "exp_inf", "mu_product")


def world_size() -> int:
    """The torch.distributed world size (1 when not distributed)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size())
    return 1


def check_optimizer_shapes(optimizer: Any, state: Mapping[str, Any], *, source: str) -> None:
    """torch does not check that per-parameter optimizer state fits the parameters; we do."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    saved_groups = state.get("param_groups", [])
    saved_count = sum(len(g.get("params", ())) for g in saved_groups)
    if saved_count != len(params):
        raise ResumeError(
            f"cannot restore the optimizer from {source}: it was saved for {saved_count} "
            f"parameters, this optimizer has {len(params)}; build the same model and optimizer"
        )
    order = [i for g in saved_groups for i in g.get("params", ())]
    for position, saved_id in enumerate(order):
        entry = state.get("state", {}).get(saved_id)
        if not entry:
            continue
        param = params[position]
        for key, value in entry.items():
            if (key in _PARAM_SHAPED and isinstance(value, torch.Tensor) and value.dim() > 0
                    and value.shape != param.shape):
                raise ResumeError(
                    f"cannot restore the optimizer from {source}: its {key!r} for parameter "
                    f"{position} has shape {tuple(value.shape)}, the parameter has "
                    f"{tuple(param.shape)}"
                )


def restore_component(what: str, obj: Any, state: Any, *, source: str) -> None:
    """``obj.load_state_dict(state)`` with an error that names ``what`` and ``source``."""
    if obj is None and state is None:
        return
    if obj is None:
        raise ResumeError(f"{source} holds {what} state but this trainer has no {what}; "
                          f"create the same {what} in setup()")
    if state is None:
        raise ResumeError(f"{source} holds no {what} state but this trainer has a {what}; "
                          f"resume without it, or start a new experiment")
    if what == "optimizer":
        check_optimizer_shapes(obj, state, source=source)
    try:
        obj.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:4]) if first else type(exc).__name__
        raise ResumeError(f"cannot restore the {what} from {source}: {detail}") from exc
