"""Model summary: the module tree, parameter counts and, given an input, per-layer output shapes
and a memory estimate (``loopwise.summary``).

The forward pass runs once under ``torch.no_grad()`` in eval mode with hooks on every module;
the hooks are removed, each module's train/eval flag and the model's device are restored, also
when the forward pass raises. See ``docs/progress.md`` for how the memory estimate is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from loopwise.utils.validate import check_int
from loopwise.watch.summary_inputs import (
    Shape,
    check_dtypes,
    check_input_size,
    make_inputs,
    nbytes,
    shape_str,
    short_repr,
    split_input,
    storage_bytes,
    storage_key,
    tensors,
)
from loopwise.watch.summary_render import LayerInfo, ModelSummary, render_shape, render_tree


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
