"""loopwise's one memory unit: MiB (2**20 bytes) in the record (``proc_rss_mib``,
``gpu{i}_mem_used_mib``...) and in every display (GPU memory lines, the model summary).

The one exception is a name kept for compatibility: the monitor's CSV column ``VRAM_gb``,
in GiB (2**30 bytes, :data:`GIB`).
"""

from __future__ import annotations

MIB = float(2**20)
GIB = float(2**30)


def mib(nbytes: float) -> float:
    """``nbytes`` in MiB."""
    return nbytes / MIB


def format_mib(nbytes: float) -> str:
    """``nbytes`` as text in MiB: ``1,234.5 MiB``."""
    return f"{nbytes / MIB:,.1f} MiB"
