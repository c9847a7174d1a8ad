"""TrainingMonitor's argument checks, each with a message that says what to do."""

from __future__ import annotations

from typing import Any

from loopwise.record.recorder import check_exporters
from loopwise.record.run import Run
from loopwise.utils.validate import check_optional_int, check_positive

PHASES = ("train", "val")


def check_options(iterable: Any, desc: Any, total: Any, mininterval: Any, run: Any,
                   record: Any, phase: Any, stateful: Any, exporters: Any, clock: Any,
                   perf: Any) -> int | None:
    """Refuse bad arguments; ``total`` comes back checked (an int or None)."""
    if isinstance(iterable, (str, bytes)) or not hasattr(iterable, "__iter__"):
        raise TypeError(
            f"TrainingMonitor needs an iterable (a DataLoader, list, generator...), got "
            f"{type(iterable).__name__}; pass the loader itself, e.g. TrainingMonitor(loader)"
        )
    if desc is not None and not isinstance(desc, str):
        raise TypeError(f"desc must be a string, got {type(desc).__name__}")
    checked = check_optional_int(total, what="total", minimum=0,
                                 hint="steps in the loop; None: the loader's len()")
    check_positive(mininterval, what="mininterval", hint="seconds between refreshes")
    if run is not None and not isinstance(run, Run):
        raise TypeError(f"run must be a loopwise Run, got {type(run).__name__}")
    if run is not None and run.closed:
        raise ValueError(f"run {run.name!r} is already closed; pass an open run")
    if run is not None and not record:
        raise ValueError("run= was given with record=False; pass one or the other")
    if phase not in PHASES:
        raise ValueError(f"phase must be 'train' or 'val', got {phase!r}")
    if isinstance(stateful, str) or not all(isinstance(k, str) for k in stateful):
        raise TypeError("stateful_metrics must be a list of metric names, e.g. ['lr']")
    check_exporters(exporters)
    for what, fn in (("clock", clock), ("perf", perf)):
        if not callable(fn):
            raise TypeError(f"{what} must be a callable returning seconds, got {fn!r}")
    return checked
