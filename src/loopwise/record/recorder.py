"""The one recording interface: what every entry point writes through.

:class:`~loopwise.record.run.Run` implements it (the run folder is the record); every exporter
(TensorBoard, MLflow, Prometheus) implements it too and is attached to a run with
``run.add_exporter(...)``, which hands it, from the store's writer thread, exactly what was
committed to the record. The shape follows torchtune's ``MetricLoggerInterface``: scalars,
config, close, plus what a training record also holds (epoch summaries, events, system
samples, histograms, images, text).

Series names and axes are fixed by ``docs/record.md``: every point carries its global step and
wall time; its epoch is the epoch in progress at that step (the ``epoch`` series marks where
each epoch ended).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

ColumnData = tuple[Sequence[int], Sequence[float], Sequence[float]]
"""One key's ``(steps, wall_times, values)``: lists, tuples or ``array`` objects."""


class EventSink(Protocol):
    """What a helper that only reports events needs from a run (``Run`` and every recorder fit):
    the health monitor, the step engine, the checkpoint manager."""

    def log_event(self, kind: str, message: str, *, level: str = ...,
                  data: Mapping[str, Any] | None = ...) -> None: ...


@runtime_checkable
class Recorder(Protocol):
    """What a recorder takes. Values are plain floats (NaN and inf allowed): converting tensors
    is the loop side's job (:mod:`loopwise.watch.convert`), so no recorder imports torch."""

    def log_scalars(self, values: Mapping[str, float], *, step: int,
                    wall_time: float | None = None) -> None:
        """Several series at one global ``step``."""

    def log_columns(self, columns: Mapping[str, ColumnData]) -> None:
        """Many points at once: ``{key: (steps, wall_times, values)}``."""

    def log_epoch(self, epoch: int, values: Mapping[str, float], *,
                  step: int | None = None) -> None:
        """An epoch's summary (series ``epoch/<name>``) at the global step where it ended."""

    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Mapping[str, Any] | None = None) -> None:
        """An event: health warnings, checkpoints, status changes..."""

    def log_system(self, values: Mapping[str, float], *, wall_time: float | None = None) -> None:
        """One system sample (``cpu_pct``, ``ram_pct``, ``gpu0_util_pct``...)."""

    def log_histogram(self, name: str, values: Any, *, step: int | None = None,
                      bins: int = 64) -> None:
        """A distribution at ``step``: ``values`` a tensor or array (``Run`` bins it off the
        caller's thread), or a binned :class:`~loopwise.record.histogram.Histogram` (what an
        exporter is handed from the record)."""

    def log_image(self, name: str, image: Any, *, step: int | None = None) -> None:
        """An image at ``step``: a PNG path, PNG bytes, an HxWx{1,3,4} uint8 array or a
        matplotlib figure (an exporter is handed the PNG file in the run folder)."""

    def log_text(self, name: str, text: str, *, step: int | None = None) -> None:
        """A text entry at ``step``."""

    def set_config(self, config: Mapping[str, Any]) -> None:
        """The run's parameters (JSON values)."""

    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        """The run ended: ``finished``, ``failed`` (with the traceback) or ``interrupted``."""


RECORDER_METHODS = ("log_scalars", "log_columns", "log_epoch", "log_event", "log_system",
                    "log_histogram", "log_image", "log_text", "set_config", "close")
"""What an object needs to be a :class:`Recorder` (an exporter)."""


def check_exporters(exporters: object) -> list[Recorder]:
    """The one check of an ``exporters=`` option: a list of :class:`Recorder` objects, or a
    ``TypeError`` naming what was given (and, for an object that is almost a recorder, the
    methods it lacks)."""
    if type(exporters) in (tuple, list) and not exporters:  # the default: no Protocol check
        return []
    if isinstance(exporters, (str, bytes, Mapping, Recorder)) \
            or not hasattr(exporters, "__iter__"):
        raise TypeError(f"exporters must be a list of loopwise Recorders (e.g. "
                        f"[TensorBoardExporter('tb')] from loopwise.export), got "
                        f"{type(exporters).__name__}")
    checked: list[Recorder] = []
    for exporter in exporters:
        if not isinstance(exporter, Recorder):
            lacks = [m for m in RECORDER_METHODS if not callable(getattr(exporter, m, None))]
            more = (f"; it lacks {', '.join(lacks)}" if len(lacks) < len(RECORDER_METHODS)
                    else "")
            raise TypeError(f"exporters must be loopwise Recorders (e.g. from "
                            f"loopwise.export), got {type(exporter).__name__}{more}")
        checked.append(exporter)
    return checked


class TrainingRun(Protocol):
    """The run a training entry point (fit, Workflow, the session, the callbacks) trains in:
    a :class:`~loopwise.record.run.Run`, or under ``torchrun`` on a rank other than 0 a
    ``RankRun`` (``loopwise.distributed.group``), which holds the shared folder's
    path and the global step and records nothing (rank 0 records for every rank)."""

    @property
    def path(self) -> Path: ...
    @property
    def name(self) -> str: ...
    @property
    def global_step(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def closed(self) -> bool: ...

    def advance(self, steps: int = 1) -> int: ...
    def restore_step(self, step: int, *, epoch: int | None = None) -> None: ...
    def log_scalars(self, values: Mapping[str, float], *, step: int,
                    wall_time: float | None = None) -> None: ...
    def log_epoch(self, epoch: int, values: Mapping[str, float], *,
                  step: int | None = None) -> None: ...
    def log_event(self, kind: str, message: str, *, level: str = "info",
                  data: Mapping[str, Any] | None = None) -> None: ...
    def log_histogram(self, name: str, values: Any, *, step: int | None = None,
                      bins: int = 64) -> None: ...
    def log_image(self, name: str, image: Any, *, step: int | None = None) -> None: ...
    def log_text(self, name: str, text: str, *, step: int | None = None) -> None: ...
    def set_config(self, config: Mapping[str, Any]) -> None: ...
    def set_info(self, **fields: Any) -> None: ...
    def add_exporter(self, exporter: Recorder) -> None: ...
    def flush(self) -> None: ...
    def close(self, status: str = "finished", *, error: str | None = None) -> None: ...
