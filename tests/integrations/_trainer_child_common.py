"""Shared by the Keras, Lightning and Hugging Face child processes: an exporter that keeps what the
run hands it (a real loopwise Recorder, in memory), and the result file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class ListRecorder:
    """An exporter keeping what the run hands it (a real loopwise Recorder, in memory)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.events: list[str] = []
        self.config: dict[str, Any] = {}
        self.closed: str | None = None

    def log_scalars(self, values: Any, *, step: int, wall_time: float | None = None) -> None:
        self.keys.update(values)

    def log_columns(self, columns: Any) -> None:
        self.keys.update(columns)

    def log_epoch(self, epoch: int, values: Any, *, step: int | None = None) -> None:
        self.keys.update(f"epoch/{k}" for k in values)

    def log_event(self, kind: str, message: str, *, level: str = "info", data: Any = None) -> None:
        self.events.append(kind)

    def log_system(self, values: Any, *, wall_time: float | None = None) -> None:
        self.keys.update(f"system:{k}" for k in values)

    def log_histogram(self, name: str, values: Any, **_: Any) -> None:
        self.keys.add(f"histogram:{name}")

    def log_image(self, name: str, image: Any, *, step: int | None = None) -> None:
        self.keys.add(f"image:{name}")

    def log_text(self, name: str, text: str, *, step: int | None = None) -> None:
        self.keys.add(f"text:{name}")

    def set_config(self, config: Any) -> None:
        self.config = dict(config)

    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        self.closed = status

    def result(self) -> dict[str, Any]:
        return {"keys": sorted(self.keys), "events": self.events, "config": self.config,
                "closed": self.closed}


def write_result(work: Path, mode: str, result: dict[str, Any]) -> None:
    (work / f"result-{mode}.json").write_text(json.dumps(result))
