"""A run's helpers (system sampler, health monitor...): one of each type, made on demand."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

H = TypeVar("H")


class Helpers:
    """A typed registry: :meth:`get` makes a type's one helper the first time (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[type, object] = {}

    def get(self, kind: type[H], factory: Callable[[], H]) -> H:
        if not isinstance(kind, type):
            raise TypeError(f"kind must be a class, got {kind!r}")
        with self._lock:
            found = self._items.get(kind)
            if found is None:
                found = factory()
                if not isinstance(found, kind):
                    raise TypeError(f"factory() made a {type(found).__name__}, not a "
                                    f"{kind.__name__}")
                self._items[kind] = found
        return found  # type: ignore[return-value]

    def find(self, kind: type[H]) -> H | None:
        return self._items.get(kind)  # type: ignore[return-value]
