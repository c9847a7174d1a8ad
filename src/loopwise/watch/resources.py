"""RAM and VRAM readings for the monitor's CSV (cheap, never initialise CUDA)."""

from __future__ import annotations

import psutil
import torch

from loopwise.utils.units import GIB


def ram_percent() -> float:
    """System RAM in use, percent."""
    return float(psutil.virtual_memory().percent)


def vram_gb() -> float:
    """Memory allocated by torch on all initialised CUDA devices, in GiB (2**30 bytes; the
    CSV column ``VRAM_gb`` keeps its name), 0 without CUDA.

    Never initialises CUDA and never synchronises: ``memory_allocated`` reads a host counter.
    """
    if not torch.cuda.is_available():
        return 0.0
    if not torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        return 0.0
    total = sum(torch.cuda.memory_allocated(i) for i in range(torch.cuda.device_count()))
    return total / GIB
