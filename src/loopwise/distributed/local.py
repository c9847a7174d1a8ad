"""What stays on each rank under ``torchrun``: the console of a rank other than 0 (nothing is
written) and the buffer its system sampler writes to until the next exchange."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

from loopwise.utils.console import null_console


def quiet() -> TextIO:
    """The console of a rank other than 0 under torchrun: nothing is written."""
    return null_console()


class SampleBuffer:
    """The sink of a rank's system sampler: samples wait here for the next refresh."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.lock = threading.Lock()

    def log_system(self, values: Mapping[str, float]) -> None:
        with self.lock:
            self.samples.append((time.time(), dict(values)))

    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Mapping[str, Any] | None = None) -> None:
        """Sampler events stay on the rank (its log); they are not part of the record."""

    def drain(self) -> list[tuple[float, dict[str, float]]]:
        with self.lock:
            out, self.samples = self.samples, []
        return out
