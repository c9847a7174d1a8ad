"""Argument checks of :class:`~loopwise.watch.progress.ProgressBar`, each with a message that
says what was wrong. Metrics are checked at the call by type only: a tensor's element count and
dtype are metadata, so no value is read from a device."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from loopwise.utils.text import printable
from loopwise.utils.validate import (
    check_bool,
    check_int,
    check_key,
    check_non_negative,
    check_optional_int,
)


def check_metrics(metrics: Any, known: set[str]) -> None:
    """A mapping of name -> number or one-element tensor. ``known`` holds the names already
    checked (and gets the new ones), so a float under a known name costs a type check and a
    set lookup."""
    if type(metrics) is not dict:
        check_mapping(metrics)
    for key, value in metrics.items():
        if type(value) is not float or key not in known:
            check_metric(key, value, known)


def check_mapping(metrics: Any) -> None:
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"metrics must be a mapping of name -> number, got {type(metrics).__name__}"
        )


def check_metric(key: Any, value: Any, known: set[str]) -> None:
    """One metric: a non-empty string name (added to ``known``) and a number or a one-element
    tensor (its element count and dtype only: nothing is read from a device)."""
    if key not in known:
        check_key(key, what="a metric name")
        known.add(key)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return
    name = printable(key)
    numel = getattr(value, "numel", None)
    if callable(numel) and hasattr(value, "dtype"):  # a tensor: shape and dtype, no read
        if numel() != 1:
            shape = list(getattr(value, "shape", ()))
            raise ValueError(f"metric {name!r} is a tensor of shape {shape}; pass a "
                             "one-element tensor (e.g. loss.mean()) or a number")
        is_complex = getattr(value, "is_complex", None)
        if str(value.dtype) == "torch.bool" or (callable(is_complex) and is_complex()):
            raise TypeError(f"metric {name!r} is a {value.dtype} tensor; pass a real number")
        return
    raise TypeError(f"metric {name!r} must be a number or a one-element tensor, "
                    f"got {type(value).__name__} {value!r:.40}")


def check_width(width: Any) -> int:
    return check_int(width, what="width", minimum=1, hint="characters of bar")


def check_options(*, desc: Any, total: Any, width: Any, show_rate: Any, show_eta: Any,
                  leave: Any, disable: Any, file: Any, clock: Any, mininterval: Any,
                  position: Any) -> None:
    """The constructor's arguments."""
    if not isinstance(desc, str):
        raise TypeError(f"desc must be a string, got {type(desc).__name__}")
    check_optional_int(total, what="total", minimum=1,
                       hint="the number of steps; None: unknown length")
    check_width(width)
    for flag, value in (("show_rate", show_rate), ("show_eta", show_eta), ("leave", leave),
                        ("disable", disable)):
        check_bool(value, what=flag)
    if file is not None and not callable(getattr(file, "write", None)):
        raise TypeError(f"file must be a text stream with write(), got {type(file).__name__}")
    if clock is not None and not callable(clock):
        raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
    if mininterval is not None:
        check_non_negative(mininterval, what="mininterval", hint="seconds; None: the default")
    check_optional_int(position, what="position", minimum=0,
                       hint="the bar's line among several bars")
