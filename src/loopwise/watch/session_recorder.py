"""What a :class:`~loopwise.watch.session.TrainingSession` records: the per-step rows it is
given (read cheaply, device tensors kept until a flush) and the recorder that hands them, the
epoch values and the session's events to the run."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from loopwise.record.reader import RunReader
from loopwise.record.run import Run
from loopwise.record.stats import render_stats
from loopwise.utils.validate import check_key
from loopwise.watch.accumulator import StepAccumulator
from loopwise.watch.convert import read_tensor_slots, to_value
from loopwise.watch.epoch_summary import EpochResult, format_values
from loopwise.watch.health.runner import ensure_health_monitor

RESERVED = ("loss", "accuracy")
REFRESH_S = 0.1  # seconds between hand-overs of per-step rows to the run (a kill loses less)


def finite_or_none(values: Mapping[str, float]) -> dict[str, float | None]:
    """NaN/inf as None, for JSON event data."""
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}


class StepValues:
    """Builds one step's row ``{"loss": .., "accuracy": .., name: ..}`` from what the loop
    passes, through the one converter (``watch/convert.py``): floats pass untouched; ints, NumPy
    scalars and CPU tensors are read at once; accelerator tensors are kept until a refresh."""

    def __init__(self) -> None:
        self.known: set[str] = set()  # metric names already checked

    def row(self, loss: Any, accuracy: Any, metrics: Any) -> dict[str, Any]:
        row = {"loss": loss if type(loss) is float else to_value("loss", loss)}
        if accuracy is not None:
            row["accuracy"] = (
                accuracy if type(accuracy) is float else to_value("accuracy", accuracy)
            )
        if metrics:
            if not isinstance(metrics, Mapping):
                raise TypeError(
                    f"metrics must be a mapping of name -> number, got {type(metrics).__name__}"
                )
            for key, value in metrics.items():
                if key not in self.known:
                    check_key(key)
                    if key in RESERVED:
                        raise ValueError(f"metrics must not contain {key!r}; pass it as the "
                                         f"{key}= argument")
                    self.known.add(key)
                row[key] = value if type(value) is float else to_value(key, value)
        return row


class SessionRecorder:
    """What a session writes to its run (nothing when ``run`` is None), through the shared
    accumulator: per-step training rows under the user's names (``loss``, ``accuracy``, ...)
    at the global step, handed over every ``REFRESH_S`` seconds and on :meth:`flush`; epoch
    values as ``epoch/<name>`` (training) and ``epoch/val_<name>`` (validation); events."""

    def __init__(self, run: Run | None, *, health: bool = True,
                 clock: Callable[[], float] = time.time,
                 perf: Callable[[], float] = time.perf_counter) -> None:
        self.run = run
        self.values = StepValues()
        self.health = ensure_health_monitor(run) if health and run is not None else None
        self.acc = StepAccumulator(run, health=self.health, clock=clock, perf=perf)
        self.perf = perf
        self.next_flush = 0.0

    @property
    def active(self) -> bool:
        return self.run is not None and not self.run.closed

    def model_summary(self, model: Any, input_size: Any, name: str) -> Any:
        """The model's summary (``loopwise.summary``), recorded as a ``model_summary`` event."""
        from loopwise.watch.summary import summary

        info = summary(model, input_size, name=name)
        self.event("model_summary", str(info), data={
            "total_params": info.total_params, "trainable_params": info.trainable_params,
            "non_trainable_params": info.non_trainable_params,
            "params_bytes": info.params_bytes,
            "estimated_total_bytes": info.estimated_total_bytes})
        return info

    def start(self, model_name: str, epochs: int, steps_per_epoch: int, validation_steps: int,
              *, system: bool) -> None:
        """The ``session_start`` event; the run's system sampler when ``system``."""
        self.event("session_start", f"{model_name}: {epochs} epochs", data={
            "model_name": model_name, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
            "validation_steps": validation_steps})
        if system and self.run is not None:
            from loopwise.watch.system_run import ensure_system_monitor

            ensure_system_monitor(self.run)

    def now(self) -> float:
        """The session's clock (seconds)."""
        return self.perf()

    def add_step(self, step: int, row: dict[str, Any]) -> None:
        """Training step ``step`` (global) with its values; steps the loop skipped count too."""
        acc = self.acc
        times = acc.times
        now = self.perf()
        if acc.step0 + len(times) != step - 1:
            times.extend([now] * max(step - 1 - acc.step0 - len(times), 0))
        times.append(now)
        acc.log(row)
        if self.flush_due(now):
            self.flush()

    def flush_due(self, now: float) -> bool:
        """Whether the window is handed over now: every ``REFRESH_S`` seconds (under torchrun
        the reducer replaces this with a step count every rank agrees on)."""
        return now >= self.next_flush

    def flush(self, *also: dict[str, Any]) -> None:
        """Hand the window to the run; read pending device values (and those in ``also``)."""
        self.next_flush = self.perf() + REFRESH_S
        self.acc.flush()
        if also:
            read_tensor_slots((row, key) for row in also for key in row)

    def resolved(self, row: dict[str, Any] | None) -> dict[str, float]:
        """``row``'s values as floats (reads device values now)."""
        row = dict(row or {})
        read_tensor_slots((row, key) for key in row)
        return {k: float(v) for k, v in row.items()}

    def epoch_values(self, epoch: int, phase: str, values: Mapping[str, float], step: int) -> None:
        """``epoch/<name>`` (training) or ``epoch/val_<name>`` (validation) at the global step
        where the epoch ended, plus a line in the run's JSON log."""
        if self.active and values:
            named = values if phase == "train" else {
                (k if k.startswith("val_") else f"val_{k}"): v for k, v in values.items()}
            self.run.log_epoch(epoch, named, step=step)  # type: ignore[union-attr]

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
            values = dict(result.train)
            values.update({(k if k.startswith("val_") else f"val_{k}"): v
                           for k, v in (result.val or {}).items()})
            self.health.observe_epoch(result.epoch, values, step=None if self.run is None
                                      else self.run.global_step or None)

    def event(self, kind: str, message: str, *, level: str = "info",
              data: Mapping[str, Any] | None = None) -> None:
        if self.run is not None and not self.run.closed:
            self.run.log_event(kind, message, level=level, data=data)
