"""GPU sources for the system sampler: NVML (``nvidia-ml-py``) and torch's allocator.

Quantities, per GPU visible to the process, named by its CUDA ordinal ``i`` (``cuda:i``):

===========================  ===============================================================
``gpu{i}_util_pct``          NVML utilisation (share of time a kernel ran), %
``gpu{i}_mem_used_mib``      NVML memory used on the device (all processes), MiB
``gpu{i}_mem_total_mib``     NVML memory total, MiB
``gpu{i}_temp_c``            temperature, degrees C
``gpu{i}_power_w``           power draw, W
``gpu{i}_torch_alloc_mib``   ``torch.cuda.memory_allocated(i)``, MiB
``gpu{i}_torch_reserved_mib````torch.cuda.memory_reserved(i)``, MiB
``gpu{i}_torch_peak_mib``    ``torch.cuda.max_memory_allocated(i)``, MiB
===========================  ===============================================================

Visibility follows ``CUDA_VISIBLE_DEVICES`` as CUDA does: entries are indices or (prefixes of)
``GPU-``/``MIG-`` UUIDs, and the list ends at the first entry that names no device. NVML
enumerates in PCI bus order; CUDA does too when ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (otherwise, on a
machine with mixed GPU models, CUDA's "fastest first" order can differ from NVML's).

The torch source reads torch only if the program already imported it and initialised CUDA: it
never imports torch and never initialises CUDA itself (that would break forked DataLoader
workers), and its calls do not synchronise the device.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from loopwise.utils.units import MIB
from loopwise.watch.sources import SourceError


class GpuUnavailable(Exception):
    """No GPU telemetry: NVML missing, no driver, or no GPU visible. ``str()`` says which."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def visible_indices(spec: str | None, uuids: Sequence[str]) -> list[int]:
    """The NVML indices visible under ``CUDA_VISIBLE_DEVICES=spec``, in CUDA ordinal order.

    ``uuids[k]`` is the UUID of NVML device ``k``. ``None`` (unset) means every device.
    """
    if spec is None:
        return list(range(len(uuids)))
    out: list[int] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            break
        if token.lstrip("-").isdigit():
            index = int(token)
            if not 0 <= index < len(uuids) or index in out:
                break
            out.append(index)
            continue
        wanted = token if token.startswith(("GPU-", "MIG-")) else "GPU-" + token
        hits = [k for k, u in enumerate(uuids) if u.startswith(wanted)]
        if len(hits) != 1 or hits[0] in out:
            break
        out.append(hits[0])
    return out


class NvmlSource:
    """Utilisation, memory, temperature and power of the visible GPUs through NVML.

    Open with :meth:`open`, which raises :class:`GpuUnavailable` with the reason when there is
    nothing to read. A quantity a device does not support (e.g. utilisation of a MIG slice) is
    skipped quietly; any other NVML error raises :class:`SourceError`.
    """

    name = "nvml"

    def __init__(self, nvml: Any, handles: list[tuple[int, Any]], names: list[str]) -> None:
        self._nvml = nvml
        self._handles = handles
        self.device_names = names
        self._unsupported: set[tuple[int, str]] = set()
        self._open = True

    @classmethod
    def open(cls, *, nvml: Any = None, visible: str | None = None,
             environ: Any = None) -> NvmlSource:
        """Initialise NVML and find the visible GPUs.

        ``visible`` defaults to ``CUDA_VISIBLE_DEVICES`` from ``environ`` (``os.environ``).
        """
        if visible is None:
            visible = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
        if visible is not None and visible.strip() in ("", "-1"):
            raise GpuUnavailable(f"no GPU visible to this process "
                                 f"(CUDA_VISIBLE_DEVICES={visible!r})")
        if nvml is None:
            try:
                import pynvml
            except ImportError as exc:
                raise GpuUnavailable(
                    "no GPU telemetry: nvidia-ml-py is not installed "
                    "(pip install 'loopwise[gpu]')"
                ) from exc
            nvml = pynvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            raise GpuUnavailable(f"no GPU telemetry: NVML is unavailable ({exc})") from exc
        try:
            count = int(nvml.nvmlDeviceGetCount())
            all_handles = [nvml.nvmlDeviceGetHandleByIndex(k) for k in range(count)]
            uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in all_handles]
            chosen = visible_indices(visible, uuids)
            handles: list[tuple[int, Any]] = []
            for ordinal, k in enumerate(chosen):
                handles.append((ordinal, all_handles[k]))
            if not handles and visible is not None:
                for ordinal, token in enumerate(t.strip() for t in visible.split(",")):
                    if not token.startswith("MIG-"):
                        break
                    handles.append((ordinal, nvml.nvmlDeviceGetHandleByUUID(token)))
            names = [_text(nvml.nvmlDeviceGetName(h)) for _, h in handles]
        except nvml.NVMLError as exc:
            nvml.nvmlShutdown()
            raise GpuUnavailable(f"no GPU telemetry: NVML failed listing GPUs ({exc})") from exc
        if not handles:
            nvml.nvmlShutdown()
            why = "NVML found no GPU" if count == 0 else (
                f"no GPU visible to this process (CUDA_VISIBLE_DEVICES={visible!r})")
            raise GpuUnavailable(why)
        return cls(nvml, handles, names)

    def describe(self) -> str:
        pairs = zip(self._handles, self.device_names, strict=True)
        return ", ".join(f"cuda:{i} {n}" for (i, _), n in pairs)

    def _call(self, ordinal: int, what: str, call: Any) -> Any:
        """``call()``, or None when the device does not support ``what``."""
        if (ordinal, what) in self._unsupported:
            return None
        try:
            return call()
        except self._nvml.NVMLError as exc:
            if getattr(exc, "value", None) == self._nvml.NVML_ERROR_NOT_SUPPORTED:
                self._unsupported.add((ordinal, what))
                return None
            raise SourceError(f"NVML failed reading {what} of cuda:{ordinal}: {exc}") from exc

    def read(self) -> dict[str, float]:
        n = self._nvml
        out: dict[str, float] = {}
        for i, h in self._handles:
            util = self._call(i, "util", lambda h=h: n.nvmlDeviceGetUtilizationRates(h))
            mem = self._call(i, "mem", lambda h=h: n.nvmlDeviceGetMemoryInfo(h))
            temp = self._call(i, "temp",
                              lambda h=h: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU))
            power = self._call(i, "power", lambda h=h: n.nvmlDeviceGetPowerUsage(h))
            if util is not None:
                out[f"gpu{i}_util_pct"] = float(util.gpu)
            if mem is not None:
                out[f"gpu{i}_mem_used_mib"] = float(mem.used) / MIB
                out[f"gpu{i}_mem_total_mib"] = float(mem.total) / MIB
            if temp is not None:
                out[f"gpu{i}_temp_c"] = float(temp)
            if power is not None:
                out[f"gpu{i}_power_w"] = float(power) / 1000.0  # NVML reports milliwatts
        return out

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                raise SourceError(f"NVML shutdown failed: {exc}") from exc


class TorchMemorySource:
    """torch's allocated, reserved and peak CUDA memory, once the program has initialised CUDA."""

    name = "torch_cuda"

    def __init__(self, *, modules: Any = None) -> None:
        self._modules = sys.modules if modules is None else modules

    def read(self) -> dict[str, float]:
        torch = self._modules.get("torch")
        if torch is None or not torch.cuda.is_initialized():
            return {}
        out: dict[str, float] = {}
        try:
            for i in range(torch.cuda.device_count()):
                out[f"gpu{i}_torch_alloc_mib"] = torch.cuda.memory_allocated(i) / MIB
                out[f"gpu{i}_torch_reserved_mib"] = torch.cuda.memory_reserved(i) / MIB
                out[f"gpu{i}_torch_peak_mib"] = torch.cuda.max_memory_allocated(i) / MIB
        except RuntimeError as exc:  # a CUDA error surfaced by torch
            raise SourceError(f"torch.cuda memory statistics failed: {exc}") from exc
        return out

    def close(self) -> None:
        """Nothing to release."""
