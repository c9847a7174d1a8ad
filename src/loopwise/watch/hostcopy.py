"""Tensors to the record without a device sync: the loop side of ``log_histogram`` and
``log_image`` (the record has no torch).

:func:`host_copy` starts an asynchronous device-to-host copy (pinned memory, ``non_blocking``)
and records an event after it on the tensor's current stream; the run's media thread polls the
event (``Event.query()``, never a wait that syncs) and reads the copy once it landed. A CPU
tensor is handed over as it is: the run copies it. :class:`MediaLog` gives TrainingMonitor and
TrainingSession their ``log_histogram`` / ``log_image`` / ``log_text``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from loopwise.record.recorder import TrainingRun
from loopwise.record.run import Run


class HostCopy:
    """An asynchronous copy of a device tensor into host memory (the record's ``HostCopy``)."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.shape = tuple(tensor.shape)
        self._host = tensor.detach().to("cpu", non_blocking=True)
        self._event = torch.Event(tensor.device)
        self._event.record()

    @property
    def nbytes(self) -> int:
        """Host memory the copy holds."""
        return int(self._host.nbytes)

    def ready(self) -> bool:
        """Whether the copy landed (no device sync)."""
        return bool(self._event.query())

    def result(self) -> Any:
        """The copy as a NumPy array (half types widened to float32); read it once ready."""
        host = self._host
        if host.dtype in (torch.bfloat16, torch.float16):
            host = host.float()
        return host.numpy()


def host_copy(values: Any) -> Any:
    """``values`` ready for ``Run.log_histogram`` / ``log_image``: a device tensor as a
    :class:`HostCopy` started now; anything else as it is."""
    if isinstance(values, torch.Tensor) and values.device.type != "cpu":
        if values.is_complex():
            raise TypeError(f"a {values.dtype} tensor has no histogram; log a real tensor")
        return HostCopy(values)
    return values


def model_histograms(run: TrainingRun, model: torch.nn.Module, *, step: int,
                     grads: bool = True) -> int:
    """Record ``weights/<param>`` (and ``grads/<param>``, for the parameters that have a
    gradient) histograms of ``model`` at ``step`` into ``run``: one asynchronous copy per
    tensor, no device sync. Returns the histograms recorded."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    n = 0
    for name, param in model.named_parameters():
        run.log_histogram(f"weights/{name}", host_copy(param), step=step)
        n += 1
        if grads and param.grad is not None:
            run.log_histogram(f"grads/{name}", host_copy(param.grad), step=step)
            n += 1
    return n


class MediaLog:
    """``log_histogram``, ``log_image`` and ``log_text`` of a loop-side object: into its run at
    its global step (default), doing nothing without a run (``record=False``, a rank other
    than 0 under torchrun)."""

    def __init__(self, run: Run | None, step: Callable[[], int]) -> None:
        self._run = run
        self._step = step

    def log_histogram(self, name: str, values: Any, *, step: int | None = None,
                      bins: int = 64) -> None:
        """The distribution of ``values`` (a tensor on any device, an array) at ``step``; the
        caller waits for no device (see :mod:`loopwise.watch.hostcopy`)."""
        if self._run is not None:
            self._run.log_histogram(name, host_copy(values),
                                    step=self._step() if step is None else step, bins=bins)

    def log_image(self, name: str, image: Any, *, step: int | None = None) -> None:
        """An image at ``step``: a PNG path or bytes, an HxWx{1,3,4} uint8 array or tensor (on
        any device), or a matplotlib figure."""
        if self._run is None:
            return
        if isinstance(image, torch.Tensor) and image.device.type != "cpu":
            if image.dtype != torch.uint8:
                raise TypeError(f"image {name!r} is a tensor of dtype {image.dtype}; give "
                                "uint8 pixels (0..255), e.g. (x * 255).clamp(0, 255).byte()")
            if image.dim() not in (2, 3) or (image.dim() == 3 and image.shape[2] not in (1, 3, 4)):
                raise ValueError(f"image {name!r} has shape {tuple(image.shape)}; give an "
                                 "HxWx1, HxWx3 or HxWx4 tensor (height, width, channels last)")
            image = HostCopy(image)
        self._run.log_image(name, image, step=self._step() if step is None else step)

    def log_text(self, name: str, text: str, *, step: int | None = None) -> None:
        """A text entry at ``step``."""
        if self._run is not None:
            self._run.log_text(name, text, step=self._step() if step is None else step)
