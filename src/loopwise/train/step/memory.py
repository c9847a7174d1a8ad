"""GPU memory helpers of the reference: ``clear_gpu_memory()`` and ``show_gpu_memory_usage()``."""

from __future__ import annotations

import gc
import sys
from typing import TextIO

import torch

from loopwise.utils.units import format_mib

NO_CUDA = "CUDA is not available on this machine: no GPU memory to show (running on the CPU)"


def clear_gpu_memory() -> int:
    """Collect garbage and release PyTorch's cached CUDA blocks.

    Returns the bytes of cache released (0 without CUDA). Tensors still referenced stay in
    memory: delete them first.
    """
    gc.collect()
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        return 0
    before = sum(torch.cuda.memory_reserved(i) for i in range(torch.cuda.device_count()))
    torch.cuda.empty_cache()
    torch.cuda.ipc_collect()  # type: ignore[no-untyped-call]
    after = sum(torch.cuda.memory_reserved(i) for i in range(torch.cuda.device_count()))
    return max(0, before - after)


def gpu_memory_lines() -> list[str]:
    """One line per visible CUDA device: allocated, reserved (cached), peak and total memory."""
    if not torch.cuda.is_available():
        return [NO_CUDA]
    lines = []
    for i in range(torch.cuda.device_count()):
        total = torch.cuda.get_device_properties(i).total_memory
        lines.append(
            f"GPU {i} ({torch.cuda.get_device_name(i)}): "
            f"allocated {format_mib(torch.cuda.memory_allocated(i))}, "
            f"reserved {format_mib(torch.cuda.memory_reserved(i))}, "
            f"peak {format_mib(torch.cuda.max_memory_allocated(i))}, "
            f"total {format_mib(total)}"
        )
    return lines


def show_gpu_memory_usage(*, file: TextIO | None = None) -> str:
    """Print the GPU memory usage (a clear line on a machine without CUDA) and return it."""
    text = "\n".join(gpu_memory_lines())
    print(text, file=file if file is not None else sys.stdout)
    return text
