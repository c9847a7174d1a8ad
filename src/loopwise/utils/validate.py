"""Argument checks shared by the record's writers, each with a message that says what to do."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any


def check_key(key: object, *, what: str = "metric name") -> str:
    """A key is a non-empty string."""
    if not isinstance(key, str):
        raise TypeError(f"{what} must be a string, got {type(key).__name__} ({key!r})")
    if not key or key.isspace():
        raise ValueError(f"{what} must be a non-empty string; give each metric a name like 'loss'")
    return key


def check_number(value: object, *, what: str = "value") -> float:
    """A real number (int, float, NumPy scalar), returned as float. NaN and inf are kept."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = ""
        if hasattr(value, "item") and hasattr(value, "dim"):
            hint = " (a tensor: log it through TrainingMonitor.log, or pass tensor.item())"
        raise TypeError(
            f"{what} must be a real number (int or float), got {type(value).__name__}"
            f" {value!r:.60}{hint}"
        )
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{what} is an int too large for a float64 (about 1.8e308 at most); "
                         "log it as a float, or scale it") from None


def _path(prefix: str, key: object) -> str:
    return f"{prefix}[{key!r}]"


def check_json(obj: Any, *, what: str = "config") -> None:
    """Refuse anything JSON cannot hold exactly, naming the key that holds it."""
    stack: list[tuple[str, Any]] = [(what, obj)]
    while stack:
        where, value = stack.pop()
        if value is None or isinstance(value, (str, bool, int)):
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(
                    f"{where} = {value!r} cannot be stored as JSON (NaN/inf); use None or a string"
                )
            continue
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(
                        f"{where} has a key {key!r} of type {type(key).__name__}; "
                        "JSON keys must be strings"
                    )
                stack.append((_path(where, key), item))
            continue
        if isinstance(value, (list, tuple)):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
            continue
        raise TypeError(
            f"{where} = {value!r:.80} (type {type(value).__name__}) cannot be stored as JSON; "
            "convert it to a number, string, bool, None, list or dict"
        )
