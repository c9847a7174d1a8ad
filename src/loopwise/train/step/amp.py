"""Mixed precision for the fit engine, one object per run.

- CPU: ``torch.autocast("cpu", dtype=torch.bfloat16)``. bf16 has float32's exponent range, so
  gradients cannot underflow the way fp16 ones do and no loss scaling is needed.
- CUDA: ``torch.autocast("cuda", dtype=torch.float16)`` and a ``torch.amp.GradScaler`` whose
  state (scale, growth tracker) is part of :meth:`Amp.state_dict`, so a resumed run continues
  with the scale it had reached instead of re-calibrating from 65536.
- Disabled (or any other device): plain float32 steps; the methods are pass-throughs.

The scaler's ``step()`` reads one flag from the GPU per step (that is how PyTorch's GradScaler
skips steps whose gradients overflowed); nothing else here synchronises.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from loopwise.utils.validate import check_bool

SUPPORTED = ("cpu", "cuda")


class Amp:
    """Autocast + (on CUDA) gradient scaling for ``device``; ``enabled=False`` is float32."""

    def __init__(self, device: torch.device | str, *, enabled: bool) -> None:
        check_bool(enabled, what="enabled")
        dev = torch.device(device)
        if enabled and dev.type not in SUPPORTED:
            raise ValueError(
                f"mixed precision is supported on {' and '.join(SUPPORTED)}, not {dev.type!r}; "
                "set use_mixed_precision=False for this device"
            )
        self.device_type = dev.type
        self.enabled = enabled
        self.dtype: torch.dtype | None = None
        self.scaler: torch.amp.GradScaler | None = None
        if enabled:
            self.dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
            if dev.type == "cuda":
                self.scaler = torch.amp.GradScaler("cuda")

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast context for a forward pass (a no-op context when disabled)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled when a grad scaler is in use."""
        if self.scaler is not None:
            self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        else:
            loss.backward()  # type: ignore[no-untyped-call]

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring the gradients back to their true scale (before clipping them)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; with a scaler, skipped on overflow and the scale updated."""
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        scaler = self.scaler.state_dict() if self.scaler is not None else None
        return {"enabled": self.enabled, "device_type": self.device_type, "scaler": scaler}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "enabled" not in state or "scaler" not in state:
            raise KeyError("AMP state needs 'enabled' and 'scaler'; was it saved by loopwise?")
        if bool(state["enabled"]) != self.enabled:
            raise ValueError(
                f"the checkpoint was saved with use_mixed_precision={state['enabled']} but this "
                f"run has use_mixed_precision={self.enabled}; use the same setting to resume"
            )
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])

    def __repr__(self) -> str:
        if not self.enabled:
            return "Amp(disabled)"
        return f"Amp({self.device_type}, {self.dtype}, scaler={self.scaler is not None})"
