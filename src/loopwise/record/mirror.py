"""Exporters attached to a run: each gets the run's config, every batch the store commits
(from the store's writer thread, never the training thread) and the close. An exporter that
raises is reported once, as an ``exporter_error`` event, and kept: the record and the other
exporters go on."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loopwise.record.media_read import hand_over
from loopwise.record.recorder import Recorder, check_exporters
from loopwise.record.store import Batch


class Mirrors:
    """The exporters of one run. ``report(name, exc)`` records a failure."""

    def __init__(self, report: Callable[[str, BaseException], None], run_path: Path) -> None:
        self._path = run_path
        self._exporters: list[Recorder] = []
        self._failed: set[str] = set()
        self._report = report

    def __iter__(self) -> Any:
        return iter(list(self._exporters))

    def add(self, exporter: Recorder, config: Mapping[str, Any] | None) -> None:
        check_exporters([exporter])
        if any(e is exporter for e in self._exporters):
            return  # already attached (a second monitor of the same run)
        if config is not None:
            exporter.set_config(config)
        self._exporters.append(exporter)

    def deliver(self, batch: Batch) -> None:
        for exporter in self._exporters:
            try:
                if batch.columns:
                    exporter.log_columns(batch.columns)
                for _, level, kind, message, data_json in batch.events:
                    exporter.log_event(kind, message, level=level,
                                       data=None if data_json is None else json.loads(data_json))
                for wall_time, values in batch.system:
                    exporter.log_system(values, wall_time=wall_time)
                for table, row in batch.media:
                    hand_over(exporter, table, row, self._path)
            except Exception as exc:
                name = type(exporter).__name__
                if name not in self._failed:
                    self._failed.add(name)
                    self._report(name, exc)

    def set_config(self, config: Mapping[str, Any]) -> None:
        for exporter in self._exporters:
            exporter.set_config(config)

    def close(self, status: str, error: str | None) -> None:
        for exporter in self._exporters:
            try:
                exporter.close(status, error=error)
            except Exception as exc:
                self._report(f"{type(exporter).__name__} (at close)", exc)
