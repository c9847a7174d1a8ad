"""The one converter from what a training loop logs to what the record holds.

Accepted (the same rule in TrainingMonitor, TrainingSession, fit and the Keras callback):

* ``float``, ``int`` (one that fits a float64), NumPy scalars and one-element arrays;
* a torch tensor with exactly one element (``loss``, ``loss.mean()``, a ``(1,)`` tensor), real
  dtype: on the CPU it is read now (cheap); on an accelerator it is kept, detached, and read
  with the others of its refresh window in one transfer (:func:`read_tensor_slots`), so logging
  never waits for the device;
* a TensorFlow eager tensor (0-dim, real dtype; found without importing TensorFlow): on the CPU
  it is read now; on an accelerator it is kept and read with the others of its window in one
  ``tf.stack(...).numpy()`` per device; a ``tf.Variable`` is snapshotted with ``read_value()``.
  A symbolic tensor (inside ``tf.function``) is refused: log outside the function.

Refused with a message naming the metric: bool, str, bytes, None, complex values, tensors of more
than one element.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import torch

from loopwise.utils.validate import check_number


def to_value(key: str, value: Any, *, what: str | None = None) -> float | torch.Tensor:
    """``value`` as a float, or as a detached 0-dim device tensor to read later. Errors name
    ``what`` (default ``metric 'key'``)."""
    if type(value) is float:
        return value
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{_name(key, what)} is a tensor of shape {tuple(value.shape)}; log a one-element "
                "tensor (e.g. loss.mean()) or a number"
            )
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{_name(key, what)} is a {value.dtype} tensor; log a real number")
        if value.device.type == "cpu":
            return float(value.item())
        return value.detach().reshape(())
    if type(value).__module__.startswith(("tensorflow", "tf_keras", "keras")) and \
            hasattr(value, "dtype") and hasattr(value, "shape"):
        return _tf_value(_name(key, what), value)  # type: ignore[no-any-return]
    if hasattr(value, "dtype") and hasattr(value, "size") and hasattr(value, "reshape"):
        if value.size != 1:  # a NumPy array
            raise ValueError(f"{_name(key, what)} is an array of shape {tuple(value.shape)}; log "
                             "one number")
        if value.dtype.kind not in "iuf":
            raise TypeError(f"{_name(key, what)} is an array of dtype {value.dtype}; log a real "
                            "number")
        value = value.reshape(()).item()
    return check_number(value, what=_name(key, what))


def _name(key: str, what: str | None) -> str:
    return what or f"metric {key!r}"


def _tf_value(name: str, value: Any) -> Any:
    """A TensorFlow tensor or variable: a float when it lives on the CPU, else kept for the
    refresh's one batched read."""
    if hasattr(value, "read_value"):  # a tf.Variable: its value now (no sync)
        value = value.read_value()
    rank = getattr(value.shape, "rank", None)
    if rank != 0:
        raise ValueError(f"{name} is a TensorFlow tensor of shape {tuple(value.shape)}; "
                         "log a 0-dim tensor (e.g. tf.reduce_mean(loss)) or a number")
    dtype = getattr(value.dtype, "name", str(value.dtype))
    if dtype == "bool" or dtype.startswith(("complex", "string")):
        raise TypeError(f"{name} is a {dtype} TensorFlow tensor; log a real number")
    if not hasattr(value, "numpy"):
        raise TypeError(f"{name} is a symbolic TensorFlow tensor (inside tf.function); "
                        "log its value outside the function")
    if "CPU:" in str(getattr(value, "device", "")) or not getattr(value, "device", ""):
        return float(value.numpy())
    return value


def to_float(key: str, value: Any, *, what: str | None = None) -> float:
    """``value`` as a float now: for a value the user asked to see (a bar's line, an epoch's
    result), where reading an accelerator tensor (one sync) is what was asked for."""
    converted = to_value(key, value, what=what)
    if isinstance(converted, float):
        return converted
    if isinstance(converted, torch.Tensor):
        return float(converted.item())
    return float(converted.numpy())  # a TensorFlow tensor on an accelerator


def to_floats(values: Iterable[Any]) -> list[float]:
    """Numbers or one-element tensors as floats, the tensors read in one transfer per device
    (:func:`read_tensor_slots`)."""
    out = list(values)
    read_tensor_slots((out, i) for i in range(len(out)))
    return [float(v) for v in out]


def read_tensor_slots(slots: Iterable[tuple[Any, Any]]) -> None:
    """Replace each ``container[key]`` that is a tensor by its float, in place.

    The tensors are stacked per device and read in one transfer each: one device sync per
    call, however many values (the point of keeping them on the device until now).
    """
    where: dict[Any, list[tuple[Any, Any]]] = {}
    for container, key in slots:
        value = container[key]
        if isinstance(value, torch.Tensor):
            where.setdefault(value.device, []).append((container, key))
        elif not isinstance(value, float) and type(value).__module__.startswith("tensorflow"):
            where.setdefault(("tf", str(value.device)), []).append((container, key))
    for device, group in where.items():
        if isinstance(device, tuple):  # TensorFlow: imported by the user already
            tf = sys.modules["tensorflow"]
            numbers = tf.stack([tf.cast(c[k], tf.float64) for c, k in group]).numpy().tolist()
        else:
            numbers = torch.stack([c[k].detach().to(torch.float64).reshape(())
                                   for c, k in group]).tolist()
        for (container, key), number in zip(group, numbers, strict=True):
            container[key] = number
