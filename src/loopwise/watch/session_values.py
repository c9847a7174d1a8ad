"""The values a :class:`~loopwise.watch.session.TrainingSession` is given, shows and records:
per-step rows (read cheaply, device tensors kept until a flush), epoch results and their text,
and the recorder that hands them to the run."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from loopwise.record.reader import RunReader
from loopwise.record.run import Run
from loopwise.record.stats import render_stats
from loopwise.watch.fold import read_tensor_slots
from loopwise.watch.health.runner import ensure_health_monitor

RESERVED = ("loss", "accuracy")
FLUSH_INTERVAL = 1.0  # seconds between hand-overs of per-step rows to the run ...
FLUSH_ROWS = 10_000  # ... or sooner, after this many rows (few live objects for the GC to scan)


class SessionOrderWarning(RuntimeWarning):
    """A TrainingSession method was called out of order; the session did the obvious thing."""


@dataclass
class EpochResult:
    """One epoch's last shown values per phase (``val`` is None when it was not validated)."""

    epoch: int
    train: dict[str, float]
    val: dict[str, float] | None = None
    train_steps: int = 0
    val_steps: int = 0


def format_values(values: Mapping[str, float]) -> str:
    """``Loss: 2.3089, Accuracy: 12.50%`` then other values by name
    (:func:`loopwise.watch.display.format_metrics`, ``style="label"``)."""
    from loopwise.watch.display import format_metrics

    return format_metrics(values, style="label") or "no steps reported"


def render_epoch_summary(result: EpochResult, epochs: int) -> str:
    """The reference's block: ``Epoch 1/10 Summary:`` and the Training/Validation lines."""
    lines = [f"Epoch {result.epoch}/{epochs} Summary:"]
    lines.append(f"  Training   - {format_values(result.train)}")
    if result.val is not None:
        lines.append(f"  Validation - {format_values(result.val)}")
    return "\n".join(lines)


def finite_or_none(values: Mapping[str, float]) -> dict[str, float | None]:
    """NaN/inf as None, for JSON event data."""
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}


class StepValues:
    """Builds one step's row ``{"loss": .., "accuracy": .., name: ..}`` from what the loop
    passes. Floats pass untouched; ints, NumPy scalars and CPU tensors are read at once; tensors
    on an accelerator are kept (detached) until :meth:`resolve` reads them in one batch."""

    def __init__(self) -> None:
        self.on_device = False
        self._known: set[str] = set()

    def row(self, loss: Any, accuracy: Any, metrics: Any) -> dict[str, Any]:
        row = {"loss": loss if type(loss) is float else self.scalar("loss", loss)}
        if accuracy is not None:
            row["accuracy"] = (
                accuracy if type(accuracy) is float else self.scalar("accuracy", accuracy)
            )
        if metrics:
            if not isinstance(metrics, Mapping):
                raise TypeError(
                    f"metrics must be a mapping of name -> number, got {type(metrics).__name__}"
                )
            for key, value in metrics.items():
                if key not in self._known:
                    _check_metric_name(key)
                    self._known.add(key)
                row[key] = value if type(value) is float else self.scalar(key, value)
        return row

    def scalar(self, name: str, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(
                    f"{name} is a tensor of shape {list(value.shape)}; pass a one-element "
                    "tensor (e.g. loss.mean()) or a number"
                )
            if value.is_complex() or value.dtype == torch.bool:
                raise TypeError(f"{name} is a {value.dtype} tensor; pass a real number")
            if value.device.type == "cpu":
                return float(value.item())
            self.on_device = True
            return value.detach().reshape(())
        if isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):
            raise TypeError(
                f"{name} must be a number or a one-element tensor, got {type(value).__name__}"
            )
        return float(value)

    def resolve(self, rows: list[dict[str, Any]]) -> None:
        """Replace device tensors in ``rows`` by floats, in place: one transfer per device."""
        read_tensor_slots((row, key) for row in rows for key in row)


class SessionRecorder:
    """What a session writes to its run (nothing when ``run`` is None): per-step training rows
    as ``train/<name>`` columns, handed over every ``FLUSH_INTERVAL`` seconds or ``FLUSH_ROWS``
    rows and on :meth:`flush`; epoch values as ``epoch/<phase>_<name>`` and ``epoch``; events."""

    def __init__(self, run: Run | None, *, health: bool = True) -> None:
        self.run = run
        self.values = StepValues()
        self.health = ensure_health_monitor(run) if health and run is not None else None
        self._pending: list[tuple[int, float, dict[str, Any]]] = []
        self._next_flush = 0.0

    @property
    def active(self) -> bool:
        return self.run is not None and not self.run.closed

    def add_step(self, step: int, row: dict[str, Any]) -> None:
        if self.run is None:
            return
        wall = time.time()
        pending = self._pending
        pending.append((step, wall, row))
        if wall >= self._next_flush or len(pending) >= FLUSH_ROWS:
            self.flush()

    def flush(self, *also: dict[str, Any]) -> None:
        """Read pending device values (and those in the ``also`` rows); hand rows to the run."""
        self._next_flush = time.time() + FLUSH_INTERVAL
        rows, self._pending = self._pending, []
        if self.values.on_device:
            self.values.resolve([r[2] for r in rows] + list(also))
            self.values.on_device = False
        if rows and self.run is not None and not self.run.closed:
            columns: dict[str, tuple[list[int], list[float], list[float]]] = {}
            for step, wall, row in rows:
                for key, value in row.items():
                    column = columns.get(key)
                    if column is None:
                        column = columns[key] = ([], [], [])
                    column[0].append(step)
                    column[1].append(wall)
                    column[2].append(value)
            self.run.log_columns({"train/" + k: c for k, c in columns.items()})
            if self.health is not None:  # one mean per metric per flush window
                self.health.observe_many(rows[-1][0], {
                    "train/" + k: sum(c[2]) / len(c[2]) for k, c in columns.items()})

    def resolved(self, row: dict[str, Any] | None) -> dict[str, float]:
        """``row``'s values as floats (reads device values now)."""
        row = row or {}
        self.values.resolve([row])
        return {k: float(v) for k, v in row.items()}

    def epoch_values(self, epoch: int, phase: str, values: Mapping[str, float], step: int) -> None:
        if self.active and values:
            # series epoch/<phase>_<name> at step=epoch, plus a line in the run's JSON log
            self.run.log_epoch(  # type: ignore[union-attr]
                epoch, {f"{phase}_{k}": v for k, v in values.items()}, step=step)

    def stats_table(self) -> str | None:
        """The end-of-training table of the run's per-epoch series (None without a run)."""
        if self.run is None:
            return None
        if not self.run.closed:
            self.run.flush()
        reader = RunReader(self.run.path)
        keys = [k for k in reader.keys() if k.startswith("epoch/")]
        if not keys:
            return None
        return render_stats(reader.stats(keys=keys), title="Metric statistics (per epoch)")

    def epoch_end(self, result: EpochResult, epochs: int) -> None:
        text = f"epoch {result.epoch}/{epochs}: training {format_values(result.train)}"
        if result.val is not None:
            text += f"; validation {format_values(result.val)}"
        self.event("epoch_end", text, data={
            "epoch": result.epoch, "train": finite_or_none(result.train),
            "val": None if result.val is None else finite_or_none(result.val)})
        if self.health is not None and self.active:
            values = {f"train_{k}": v for k, v in result.train.items()}
            values.update({f"val_{k}": v for k, v in (result.val or {}).items()})
            self.health.observe_epoch(result.epoch, values)

    def event(self, kind: str, message: str, *, level: str = "info",
              data: Mapping[str, Any] | None = None) -> None:
        if self.run is not None and not self.run.closed:
            self.run.log_event(kind, message, level=level, data=data)


def _check_metric_name(key: object) -> None:
    if not isinstance(key, str) or not key.strip():
        raise TypeError(f"metric names must be non-empty strings, got {key!r}")
    if key in RESERVED:
        raise ValueError(f"metrics must not contain {key!r}; pass it as the {key}= argument")
