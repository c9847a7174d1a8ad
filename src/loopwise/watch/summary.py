"""Model summary: the module tree, parameter counts and, given an input, per-layer output shapes
and a memory estimate (``loopwise.summary``).

The forward pass runs once under ``torch.no_grad()`` in eval mode with hooks on every module;
the hooks are removed, each module's train/eval flag and the model's device are restored, also
when the forward pass raises. See ``docs/progress.md`` for how the memory estimate is computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from loopwise.utils.validate import check_int
from loopwise.watch.model_summary import (
    LayerInfo,
    ModelSummary,
    Shape,
    render_shape,
    render_tree,
)


class SummaryError(ValueError):
    """The forward pass of :func:`summary` failed; the message names the layer and shapes."""


def summary(
    model: nn.Module,
    input_size: Sequence[int] | Sequence[Sequence[int]] | None = None,
    *,
    input_data: Any = None,
    dtypes: torch.dtype | Sequence[torch.dtype] | None = None,
    depth: int = 3,
    device: str | torch.device | None = None,
    name: str | None = None,
) -> ModelSummary:
    """Summarise ``model``.

    ``input_size`` is one shape *including the batch dimension* (``(32, 3, 32, 32)``) or a list
    of shapes for a model with several inputs; inputs are made with ``dtypes`` (default: the
    model's floating dtype; integer dtypes give zeros, valid as embedding indices). Or pass real
    ``input_data``: a tensor, a list/tuple of positional inputs, or a dict of keyword inputs.
    Without an input only the tree and parameter counts are given. ``depth`` limits the tree and
    the per-layer table; ``device`` runs the forward pass there (default: the model's device);
    ``name`` replaces the class name at the root of the tree.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary() needs a torch.nn.Module, got {type(model).__name__}")
    depth = check_int(depth, what="depth", minimum=0, hint="levels of the tree shown")
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"name must be a non-empty string or None, got {name!r}")
    if input_size is not None and input_data is not None:
        raise ValueError("pass input_size or input_data, not both")
    label = name or type(model).__name__
    run_device = _resolve_device(model, device)

    layers: tuple[LayerInfo, ...] = ()
    input_shapes: tuple[Shape, ...] = ()
    input_bytes = fwd_bytes = None
    if input_size is not None or input_data is not None:
        if input_data is None:
            shapes = check_input_size(input_size)
            input_data = make_inputs(shapes, check_dtypes(dtypes, len(shapes), model), run_device)
        elif dtypes is not None:
            raise ValueError("dtypes applies to input_size; input_data already has its dtypes")
        args, kwargs = split_input(input_data, run_device)
        inputs = tensors((args, kwargs))
        input_shapes = tuple(tuple(t.shape) for t in inputs)
        input_bytes = storage_bytes(inputs)
        trace = _Trace(model, label, depth, exclude=inputs)
        _run_forward(model, args, kwargs, trace, run_device)
        layers, fwd_bytes = tuple(trace.layers), 2 * trace.activation_bytes

    params = list(model.parameters())  # unique by identity: tied parameters once
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in params):
        raise ValueError(
            "the model has uninitialized (lazy) parameters; pass input_size or input_data so "
            "summary() can run the forward pass that creates them"
        )
    buffers = list(model.buffers())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return ModelSummary(
        name=label,
        tree=render_tree(model, label, depth),
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        params_bytes=sum(p.numel() * p.element_size() for p in params),
        buffers_bytes=sum(b.numel() * b.element_size() for b in buffers),
        num_buffers=sum(b.numel() for b in buffers),
        layers=layers,
        input_shapes=input_shapes,
        input_bytes=input_bytes,
        forward_backward_bytes=fwd_bytes,
        depth=depth,
    )


class _Trace:
    """Forward pre-hooks and hooks on every module: rows in call order, the stack of modules
    being run (its top is the failing layer when the forward pass raises), activation bytes."""

    def __init__(self, model: nn.Module, label: str, depth: int, exclude: list[torch.Tensor]):
        self.names = {m: n for n, m in model.named_modules()}
        self.names[model] = label
        self.root = model
        self.depth = depth
        self.layers: list[LayerInfo] = []
        # (module, args, kwargs, row index or -1) for every module being run
        self.stack: list[tuple[nn.Module, tuple[Any, ...], dict[str, Any], int]] = []
        self.called: set[nn.Module] = set()
        self.storages: dict[int, Any] = {}  # data_ptr -> storage, kept alive until done
        self.activation_bytes = 0
        self.excluded = {storage_key(t) for t in exclude}

    def pre_hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        depth = 0 if module is self.root else self.names[module].count(".") + 1
        row = -1
        if depth <= self.depth:
            row = len(self.layers)
            self.layers.append(
                LayerInfo(
                    name=self.names[module],
                    type_name=type(module).__name__,
                    depth=depth,
                    output_shape="?",  # the rest is filled in by hook() (lazy modules are
                    output_shapes=(),  # initialised by then)
                    num_params=0,
                    trainable_params=0,
                    repeated=module in self.called,
                )
            )
        self.called.add(module)
        self.stack.append((module, args, kwargs, row))

    def hook(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> None:
        row = -1
        while self.stack:  # pop down to this module (frames left by exceptions caught inside)
            frame = self.stack.pop()
            if frame[0] is module:
                row = frame[3]
                break
        outputs = tensors(output)
        for t in outputs:
            key = storage_key(t)
            if key not in self.storages and key not in self.excluded:
                self.storages[key] = t.untyped_storage() if t.layout == torch.strided else t
                self.activation_bytes += nbytes(t)
        if row >= 0:
            params = list(module.parameters())
            self.layers[row] = replace(
                self.layers[row],
                output_shape=render_shape(output),
                output_shapes=tuple(tuple(t.shape) for t in outputs),
                num_params=sum(p.numel() for p in params),
                trainable_params=sum(p.numel() for p in params if p.requires_grad),
            )

    def failure(self, exc: Exception, inputs: tuple[Shape, ...]) -> SummaryError:
        module, args, kwargs, _ = self.stack[-1] if self.stack else (self.root, (), {}, -1)
        if module is self.root:
            where = f"the model's own forward ({self.names[module]})"
            msg = f"summary(): the forward pass failed in {where}"
        else:
            where = f"layer '{self.names[module]}' ({short_repr(module)})"
            msg = f"summary(): the forward pass failed in {where}"
            got = [shape_str(tuple(t.shape)) for t in tensors((args, kwargs))]
            if got:
                msg += f" with input shape {', '.join(got)}"
            own = [f"{n} {shape_str(tuple(p.shape))}" for n, p in module.named_parameters()]
            if 0 < len(own) <= 4:
                msg += f" (parameters: {', '.join(own)})"
        given = ", ".join(shape_str(s) for s in inputs) or "none"
        return SummaryError(
            f"{msg}: {type(exc).__name__}: {exc}. Model input: {given}. Check input_size or "
            "input_data (input_size includes the batch dimension) against what the model expects."
        )


def _run_forward(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    trace: _Trace,
    device: torch.device,
) -> None:
    modes = {m: m.training for m in model.modules()}
    home = _single_device(model)
    move = home is not None and home != device
    handles = []
    try:
        if move:
            model.to(device)
        for module in trace.names:
            handles.append(module.register_forward_pre_hook(trace.pre_hook, with_kwargs=True))
            handles.append(module.register_forward_hook(trace.hook, with_kwargs=True))
        for module in modes:
            module.training = False
        with torch.no_grad():
            try:
                model(*args, **kwargs)
            except Exception as exc:
                raise trace.failure(
                    exc, tuple(tuple(t.shape) for t in tensors((args, kwargs)))
                ) from exc
    finally:
        for handle in handles:
            handle.remove()
        for module, was_training in modes.items():
            module.training = was_training
        if move:
            model.to(home)
        trace.storages.clear()


def _resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is None:
        for t in (*model.parameters(), *model.buffers()):
            return t.device
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be a torch device like 'cpu' or 'cuda:0', got {device!r}"
        ) from exc
    devices = {t.device for t in (*model.parameters(), *model.buffers())}
    if len(devices) > 1:
        raise ValueError(
            f"the model spans several devices ({sorted(map(str, devices))}); leave device=None "
            "to summarise it where it is"
        )
    return dev


def _single_device(model: nn.Module) -> torch.device | None:
    devices = {t.device for t in (*model.parameters(), *model.buffers())}
    return devices.pop() if len(devices) == 1 else None


# --- the inputs: checking ``input_size``/``dtypes``, making inputs without touching the global
# RNG, moving ``input_data``; walking nested outputs and measuring their storage
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
