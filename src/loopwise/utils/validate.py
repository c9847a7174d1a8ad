"""Argument checks shared by the record's writers, each with a message that says what to do."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any


def shown(value: object) -> str:
    """``repr(value)`` for an error message, except for an int too long to show (or print)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    return repr(value)


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: a ``TypeError``, and a ``ValueError`` too, so code that
    caught the ``ValueError`` the hand-written checks raised before they came here still
    catches it."""


def check_int(value: object, *, what: str, minimum: int | None = 0,
              maximum: int | None = None, hint: str = "") -> int:
    """An int (NumPy ints too; never a bool) from ``minimum`` to ``maximum`` (``None``: no
    bound), returned as int. The one style of every check here: the wrong type is a
    ``TypeError`` (:class:`ArgumentTypeError`) naming the type, a value out of range a
    ``ValueError`` naming the value; ``hint`` says what the number counts."""
    if (type(value) is int and (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)):
        return value  # the common case, first: this runs on some per-step paths
    extra = f" ({hint})" if hint else ""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ArgumentTypeError(f"{what} must be an int{extra}, got {type(value).__name__}")
    number = int(value.__index__())
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{what} must be {_int_range(minimum, maximum)}{extra}, "
                         f"got {shown(number)}")
    return number


def _int_range(minimum: int | None, maximum: int | None, *, optional: bool = False) -> str:
    tail = " or None" if optional else ""
    if minimum is not None and maximum is not None:
        return f"an int from {minimum} to {maximum}{tail}"
    if minimum is not None:
        return f"an int >= {minimum}{tail}"
    if maximum is not None:
        return f"an int <= {maximum}{tail}"
    return f"an int{tail}"


def check_optional_int(value: object, *, what: str, minimum: int | None = 0,
                       maximum: int | None = None, hint: str = "") -> int | None:
    """``None``, or an int as :func:`check_int` takes it; the messages say None is allowed."""
    if value is None:
        return None
    extra = f" ({hint})" if hint else ""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ArgumentTypeError(f"{what} must be an int or None{extra}, "
                                f"got {type(value).__name__}")
    number = int(value.__index__())
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{what} must be {_int_range(minimum, maximum, optional=True)}{extra},"
                         f" got {shown(number)}")
    return number


def _bounds(minimum: float | None, maximum: float | None, open_min: bool, open_max: bool
            ) -> str:
    if minimum is not None and maximum is not None:
        return (f" in {'(' if open_min else '['}{minimum:g}, {maximum:g}"
                f"{')' if open_max else ']'}")
    if minimum is not None:
        return f" {'>' if open_min else '>='} {minimum:g}"
    if maximum is not None:
        return f" {'<' if open_max else '<='} {maximum:g}"
    return ""


def check_float(value: object, *, what: str, minimum: float | None = None,
                maximum: float | None = None, open_min: bool = False, open_max: bool = False,
                hint: str = "") -> float:
    """A finite real number (int, float, NumPy scalar; never a bool) within the bounds
    (``open_min``/``open_max``: the bound itself is out), returned as float. NaN and inf are
    refused (the NaN rule: no argument is NaN). The one style: ``TypeError`` naming the wrong
    type, ``ValueError`` naming the value."""
    extra = f" ({hint})" if hint else ""
    rule = f"{what} must be a finite number{_bounds(minimum, maximum, open_min, open_max)}{extra}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{rule}, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{rule}, got {shown(value)}, too large for a float") from None
    if (not math.isfinite(number)
            or (minimum is not None and (number <= minimum if open_min else number < minimum))
            or (maximum is not None and (number >= maximum if open_max else number > maximum))):
        raise ValueError(f"{rule}, got {shown(value)}")
    return number


def check_positive(value: object, *, what: str, hint: str = "") -> float:
    """A finite number > 0 (:func:`check_float`)."""
    return check_float(value, what=what, minimum=0, open_min=True, hint=hint)


def check_non_negative(value: object, *, what: str, hint: str = "") -> float:
    """A finite number >= 0 (:func:`check_float`)."""
    return check_float(value, what=what, minimum=0, hint=hint)


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


INT64_MAX = 2**63 - 1


def check_step(step: object, *, what: str = "step") -> int:
    """A step is an int that the store can hold (a signed 64-bit integer)."""
    if type(step) is not int:
        raise TypeError(f"{what} must be an int, got {type(step).__name__}")
    if not -INT64_MAX - 1 <= step <= INT64_MAX:
        raise ValueError(f"{what} {step} is beyond what the record holds (a 64-bit integer, "
                         f"at most {INT64_MAX}); count steps from 0")
    return step


def check_wall_time(wall_time: object, *, what: str = "wall_time") -> float:
    """A wall time is a finite real number of seconds since the epoch (``time.time()``)."""
    if isinstance(wall_time, bool) or not isinstance(wall_time, numbers.Real):
        raise TypeError(f"{what} must be seconds since the epoch as a number (like "
                        f"time.time()), got {type(wall_time).__name__} {wall_time!r:.40}")
    try:
        out = float(wall_time)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ValueError(f"{what} must be a finite number of seconds since the epoch (like "
                         f"time.time()), got {wall_time!r:.40}")
    return out


def _path(prefix: str, key: object) -> str:
    return f"{prefix}[{key!r}]"


def check_json(obj: Any, *, what: str = "config") -> None:
    """Refuse anything JSON cannot hold exactly, naming the key that holds it."""
    stack: list[tuple[str, Any]] = [(what, obj)]
    while stack:
        where, value = stack.pop()
        if value is None or isinstance(value, (str, bool)):
            continue
        if isinstance(value, int):
            try:
                str(value)
            except ValueError:  # Python's limit on int -> decimal text (4300 digits)
                raise ValueError(f"{where} is an int of {value.bit_length()} bits, too long to "
                                 "be written as JSON; store it as a string") from None
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
