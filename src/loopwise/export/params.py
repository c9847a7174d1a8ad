"""A run's config as flat parameters (``optimizer.lr``), the form TensorBoard hparams and MLflow
params take."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def flatten_config(config: Mapping[str, Any], *, sep: str = ".") -> dict[str, Any]:
    """Nested mappings become dotted keys; lists and other values are kept as they are."""
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping, got {type(config).__name__}")
    out: dict[str, Any] = {}

    def walk(data: Mapping[str, Any], prefix: str) -> None:
        for key, value in data.items():
            if isinstance(value, Mapping) and value:
                walk(value, f"{prefix}{key}{sep}")
            else:
                out[f"{prefix}{key}"] = value

    walk(config, "")
    return out


def param_text(value: Any, *, limit: int) -> str:
    """``value`` as text of at most ``limit`` characters (JSON for lists and mappings; a value
    cut short ends with ``...``)."""
    text = value if isinstance(value, str) else json.dumps(value, allow_nan=True, default=str)
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def scalar_param(value: Any) -> bool | int | float | str:
    """A config value as TensorBoard hparams take it: bool, number or string."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return param_text(value, limit=500)
