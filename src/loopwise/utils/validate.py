"""Argument checks shared by the record's writers, each with a message that says what to do."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any


def check_int(value: object, *, what: str, minimum: int = 0, hint: str = "") -> int:
    """An int (NumPy ints too; never a bool) >= ``minimum``, returned as int. The one style:
    the wrong type is a ``TypeError`` naming the type, a value out of range a ``ValueError``
    naming the value; ``hint`` says what the number counts."""
    extra = f" ({hint})" if hint else ""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{what} must be an int{extra}, got {type(value).__name__}")
    number = int(value.__index__())
    if number < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}{extra}, got {number}")
    return number


def check_count(value: object, *, what: str, hint: str = "") -> int:
    """An int >= 0 (:func:`check_int`)."""
    return check_int(value, what=what, minimum=0, hint=hint)


def check_bool(value: object, *, what: str) -> bool:
    """True or False (not 0, 1 or "yes"), or ``TypeError``."""
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return value


def is_key(key: object) -> bool:
    """The one key rule: a metric, series or event name is a string that is not empty and
    not only white space."""
    return isinstance(key, str) and bool(key) and not key.isspace()


def check_key(key: object, *, what: str = "metric name") -> str:
    """``key`` when it follows the one key rule (:func:`is_key`), else a clear error."""
    if not isinstance(key, str):
        raise TypeError(f"{what} must be a string, got {type(key).__name__} ({key!r:.60})")
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
