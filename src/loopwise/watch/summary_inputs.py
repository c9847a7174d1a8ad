"""Inputs for :func:`loopwise.watch.summary.summary`: checking ``input_size``/``dtypes``, making
inputs without touching the global RNG, moving ``input_data``, and walking nested outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

Shape = tuple[int, ...]


def check_input_size(input_size: Any) -> list[Shape]:
    def is_shape(x: Any) -> bool:
        return (
            isinstance(x, (tuple, list, torch.Size))
            and len(x) > 0
            and all(isinstance(d, int) and not isinstance(d, bool) for d in x)
        )

    shapes = [input_size] if is_shape(input_size) else input_size
    if not isinstance(shapes, (list, tuple)) or not shapes or not all(is_shape(s) for s in shapes):
        raise ValueError(
            "input_size must be a shape including the batch dimension, like (32, 3, 32, 32), "
            f"or a list of such shapes for several inputs; got {input_size!r}"
        )
    for s in shapes:
        if any(d <= 0 for d in s):
            raise ValueError(f"input_size dimensions must be > 0, got {tuple(s)}")
    return [tuple(s) for s in shapes]


def check_dtypes(dtypes: Any, n: int, model: nn.Module) -> list[torch.dtype]:
    if dtypes is None:
        floating = [p.dtype for p in model.parameters() if p.is_floating_point()]
        return [floating[0] if floating else torch.get_default_dtype()] * n
    if isinstance(dtypes, torch.dtype):
        return [dtypes] * n
    if (
        not isinstance(dtypes, (list, tuple))
        or len(dtypes) != n
        or not all(isinstance(d, torch.dtype) for d in dtypes)
    ):
        raise ValueError(
            f"dtypes must be a torch.dtype or a list of {n} torch.dtype, got {dtypes!r}"
        )
    return list(dtypes)


def make_inputs(shapes: list[Shape], dtypes: list[torch.dtype], device: torch.device) -> list[Any]:
    gen = torch.Generator(device=device).manual_seed(0)  # never touch the global RNG
    out = []
    for shape, dtype in zip(shapes, dtypes, strict=True):
        if dtype.is_floating_point or dtype.is_complex:
            out.append(torch.rand(shape, generator=gen, device=device).to(dtype))
        else:
            out.append(torch.zeros(shape, dtype=dtype, device=device))
    return out


def split_input(data: Any, device: torch.device) -> tuple[tuple[Any, ...], dict[str, Any]]:
    moved = _to_device(data, device)
    if isinstance(moved, Mapping):
        return (), dict(moved)
    if isinstance(moved, (list, tuple)):
        return tuple(moved), {}
    if isinstance(moved, torch.Tensor):
        return (moved,), {}
    raise TypeError(
        "input_data must be a tensor, a list/tuple of positional inputs or a dict of keyword "
        f"inputs, got {type(data).__name__}"
    )


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, Mapping):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*(_to_device(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def tensors(obj: Any) -> list[torch.Tensor]:
    """Every tensor in a nested output (tuples, lists, dicts, dataclass-like objects aside)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, Mapping):
        return [t for v in obj.values() for t in tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in tensors(v)]
    return []


def storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr() if t.layout == torch.strided else id(t)


def nbytes(t: torch.Tensor) -> int:
    if t.layout == torch.strided:
        return int(t.untyped_storage().nbytes())
    return t.numel() * t.element_size()


def storage_bytes(items: list[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    for t in items:
        seen.setdefault(storage_key(t), nbytes(t))
    return sum(seen.values())


def short_repr(module: nn.Module) -> str:
    extra = module.extra_repr()
    return f"{type(module).__name__}({extra})" if "\n" not in extra else type(module).__name__


def shape_str(shape: Shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"
