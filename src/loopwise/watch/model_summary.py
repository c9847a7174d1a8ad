"""What :func:`loopwise.watch.summary.summary` finds (:class:`ModelSummary`, one
:class:`LayerInfo` per module call) and its text rendering (pure functions of that state).

Kept apart from the tracing code so the layout can be tested and changed without running models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopwise.utils.table import render_table
from loopwise.utils.units import MIB

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, ...]  # a tensor's shape, batch dimension included
BYTES_PER_MB = MIB  # labelled "(MB)" as the reference layout has it; the unit is MiB (2**20)


@dataclass(frozen=True)
class LayerInfo:
    """One module call seen during the forward pass."""

    name: str  # dotted path ("encoder.0"); the model's name for the root
    type_name: str
    depth: int  # 0 for the root
    output_shape: str  # rendered, e.g. "([2, 5, 16], ([1, 2, 16], [1, 2, 16]))"
    output_shapes: tuple[Shape, ...]  # every output tensor's shape, flattened
    num_params: int  # this module's parameters, recursively, tied ones once
    trainable_params: int
    repeated: bool = False  # the module was already called earlier in this forward pass


@dataclass(frozen=True)
class ModelSummary:
    """What :func:`summary` found. ``str()`` gives the reference layout."""

    name: str
    tree: str
    total_params: int
    trainable_params: int
    non_trainable_params: int
    params_bytes: int
    buffers_bytes: int
    num_buffers: int  # elements in buffers (running stats, ...)
    layers: tuple[LayerInfo, ...] = ()
    input_shapes: tuple[Shape, ...] = ()
    input_bytes: int | None = None
    forward_backward_bytes: int | None = None
    depth: int = field(default=3)

    @property
    def estimated_total_bytes(self) -> int | None:
        """Input + forward/backward activations + params + buffers (None without an input)."""
        if self.input_bytes is None or self.forward_backward_bytes is None:
            return None
        return (
            self.input_bytes + self.forward_backward_bytes + self.params_bytes + self.buffers_bytes
        )

    def __str__(self) -> str:
        return render_summary(self)



def format_count(n: int) -> str:
    """A parameter count the way the reference prints it: ``896``, ``18.5K``, ``1.1M``, ``7.0B``."""
    if n < 1000:
        return str(n)
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.1f}{suffix}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_mb(nbytes: int) -> str:
    """Bytes in MiB (loopwise's one memory unit), labelled "MB" as in the reference layout:
    two decimals from 1 up, three below (``0.012``, ``4.08``)."""
    mb = nbytes / BYTES_PER_MB
    return f"{mb:.2f}" if mb >= 1 else f"{mb:.3f}"


def render_shape(obj: Any) -> str:
    """A module output as shapes: ``[2, 5, 16]``, ``([2, 5, 16], ([1, 2, 16], [1, 2, 16]))``,
    ``{logits: [2, 3], aux: [2, 1]}``; ``None`` for no output, the type name for anything else."""
    shape = getattr(obj, "shape", None)
    if shape is not None and hasattr(obj, "dtype"):
        return "[" + ", ".join(str(int(d)) for d in shape) + "]"
    if obj is None:
        return "None"
    if isinstance(obj, Mapping):
        return "{" + ", ".join(f"{k}: {render_shape(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        inner = ", ".join(render_shape(v) for v in obj)
        return f"[{inner}]" if isinstance(obj, list) else f"({inner})"
    return type(obj).__name__


def render_tree(module: nn.Module, name: str, depth: int) -> str:
    """The PyTorch ``repr`` layout of ``module`` with the root called ``name``, children shown
    down to ``depth`` levels; a deeper container is shown as ``ClassName(...)``."""
    return "\n".join(_tree_lines(module, name, depth))


def _tree_lines(module: nn.Module, label: str, levels_left: int) -> list[str]:
    extra = module.extra_repr()
    children = list(module.named_children())
    if not children:
        return [f"{label}({extra})"]
    if levels_left <= 0:
        return [f"{label}(...)"]
    lines = [f"{label}("]
    lines.extend("  " + line for line in extra.split("\n") if line)
    for child_name, child in children:
        sub = _tree_lines(child, f"({child_name}): {type(child).__name__}", levels_left - 1)
        lines.extend("  " + line for line in sub)
    lines.append(")")
    return lines


def render_layer_table(layers: Sequence[LayerInfo]) -> str:
    """One row per module call (in call order): indented name and type, output shape, params."""
    header = ("Layer (type)", "Output Shape", "Param #")
    rows = []
    for layer in layers:
        label = "  " * layer.depth + f"{layer.name} ({layer.type_name})"
        params = "(recursive)" if layer.repeated else f"{layer.num_params:,}"
        rows.append((label, layer.output_shape, params))
    return render_table(rows, header=header, align="llr", rule="frame")


def render_summary(s: ModelSummary) -> str:
    """The reference layout: tree, (per-layer table), parameter totals, (memory estimate)."""
    parts = [s.tree, ""]
    if s.layers:
        parts += [render_layer_table(s.layers), ""]
    parts += [
        f"Total parameters: {format_count(s.total_params)}",
        f"Trainable parameters: {format_count(s.trainable_params)}",
        f"Non-trainable parameters: {format_count(s.non_trainable_params)}",
    ]
    if s.input_bytes is not None and s.forward_backward_bytes is not None:
        parts.append(f"Input size (MB): {format_mb(s.input_bytes)}")
        parts.append(f"Forward/backward pass size (MB): {format_mb(s.forward_backward_bytes)}")
    parts.append(f"Params size (MB): {format_mb(s.params_bytes)}")
    if s.buffers_bytes:
        parts.append(f"Buffers size (MB): {format_mb(s.buffers_bytes)}")
    if s.estimated_total_bytes is not None:
        parts.append(f"Estimated Total Size (MB): {format_mb(s.estimated_total_bytes)}")
    return "\n".join(parts)
