"""The one converter from what a training loop logs to what the record holds.

Accepted (the same rule in TrainingMonitor, TrainingSession, fit and the Keras callback):

* ``float``, ``int`` (one that fits a float64), NumPy scalars and one-element arrays;
* a torch tensor with exactly one element (``loss``, ``loss.mean()``, a ``(1,)`` tensor), real
  dtype: on the CPU it is read now (cheap); on an accelerator it is kept, detached, and read
  with the others of its refresh window in one transfer (:func:`read_tensor_slots`), so logging
  never waits for the device;
* any other object with one element and a ``numpy()`` method (a TensorFlow eager tensor) is read
  through ``numpy()``.

Refused with a message naming the metric: bool, str, bytes, None, complex values, tensors of more
than one element.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from loopwise.record.validate import check_number


def to_value(key: str, value: Any) -> float | torch.Tensor:
    """``value`` as a float, or as a detached 0-dim device tensor to read later."""
    if type(value) is float:
        return value
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"metric {key!r} is a tensor of shape {tuple(value.shape)}; log a one-element "
                "tensor (e.g. loss.mean()) or a number"
            )
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"metric {key!r} is a {value.dtype} tensor; log a real number")
        if value.device.type == "cpu":
            return float(value.item())
        return value.detach().reshape(())
    if hasattr(value, "numpy") and hasattr(value, "shape") and not isinstance(value, type):
        value = value.numpy()  # a TensorFlow eager tensor: its NumPy value
    if hasattr(value, "dtype") and hasattr(value, "size") and hasattr(value, "reshape"):
        if value.size != 1:  # a NumPy array
            raise ValueError(f"metric {key!r} is an array of shape {tuple(value.shape)}; log "
                             "one number")
        if value.dtype.kind not in "iuf":
            raise TypeError(f"metric {key!r} is an array of dtype {value.dtype}; log a real "
                            "number")
        value = value.reshape(()).item()
    return check_number(value, what=f"metric {key!r}")


def read_tensor_slots(slots: Iterable[tuple[Any, Any]]) -> None:
    """Replace each ``container[key]`` that is a tensor by its float, in place.

    The tensors are stacked per device and read in one transfer each: one device sync per
    call, however many values (the point of keeping them on the device until now).
    """
    where: dict[torch.device, list[tuple[Any, Any]]] = {}
    for container, key in slots:
        value = container[key]
        if isinstance(value, torch.Tensor):
            where.setdefault(value.device, []).append((container, key))
    for group in where.values():
        stacked = torch.stack([c[k].detach().to(torch.float64).reshape(()) for c, k in group])
        for (container, key), number in zip(group, stacked.tolist(), strict=True):
            container[key] = number
