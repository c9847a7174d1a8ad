"""Packages whose public names are imported when first used (``import loopwise`` and the CLI's
start-up stay cheap): the module-level ``__getattr__`` and ``__dir__`` of such a package."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, public: Mapping[str, str], *,
               listed: list[str] | None = None) -> tuple[Callable[[str], Any],
                                                         Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name of ``public`` (name -> the module
    that defines it) is imported on first use and kept in the package; ``listed``: what
    ``dir()`` shows (default: the public names)."""

    def __getattr__(name: str) -> Any:
        module = public.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return list(sorted(public) if listed is None else listed)

    return __getattr__, __dir__
