"""loopwise's one NaN-to-JSON convention: a non-finite float (NaN, inf, -inf) is written as
``null``.

JSON has no NaN; Python's ``json`` would write the non-standard ``NaN`` token, which strict
readers (browsers, ``jq``, Go, Rust) refuse. ``null`` is what those readers, pandas
(``read_json`` gives NaN) and most dashboards expect for "no finite value". Every JSON loopwise
writes with measured values in it (``log.jsonl``, event data, ``results.json``, checkpoint
manifests) goes through :func:`json_safe`; a reader that needs the float back uses
:func:`float_or_nan`. Configs keep refusing NaN (``check_json``): a setting has no "no value".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def json_safe(value: Any) -> Any:
    """A copy of ``value`` where every non-finite float is ``None`` (written ``null``); tuples
    become lists and mapping keys strings, as JSON gives them back."""
    kind = type(value)
    if kind is str or kind is int or value is None or kind is bool:  # most leaves: no ABC check
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if kind is dict or isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def float_or_nan(value: Any) -> float:
    """A number read back from JSON: ``null`` (a non-finite value when written) is NaN."""
    return math.nan if value is None else float(value)
