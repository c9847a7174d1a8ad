"""The health runner: feeds the metric and system streams to the detectors, records each finding
as a run event and prints it once as a console warning.

Live, attached to a run::

    health = ensure_health_monitor(run)              # one per run; default detectors
    health.observe("loss", step, 0.31)               # step stream (floats you already have)
    health.observe_epoch(epoch, {"train_loss": 0.3, "val_loss": 0.4})   # epoch stream
    # the system stream arrives by itself from the run's SystemMonitor

Alone, on a finished run (:mod:`loopwise.watch.health.replay`)::

    findings = analyze_run("runs/my-run")

Three streams: ``step`` (per-step values), ``epoch`` (one mapping per evaluation) and ``system``
(the sampler's per-interval samples). Each detector says which streams it reads
(``detector.streams``). An epoch observation also carries the latest system sample's means
(names without ``.min``/``.max``) unless it has them itself, so ``memory_leak`` sees memory once
per epoch.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO

from loopwise.utils.table import render_table
from loopwise.utils.validate import check_int, check_key, check_number, check_optional_int
from loopwise.watch.health.base import Detector, Finding
from loopwise.watch.health.input_bound import InputBoundDetector
from loopwise.watch.health.memory_leak import MemoryLeakDetector
from loopwise.watch.health.nonfinite import NonFiniteDetector
from loopwise.watch.health.overfitting import OverfittingDetector
from loopwise.watch.health.plateau import PlateauDetector
from loopwise.watch.health.spike import SpikeDetector
from loopwise.watch.health.stalled import StalledDetector
from loopwise.watch.health.trend import TrendDetector

if TYPE_CHECKING:  # the replay (``loopwise doctor``) needs no writer: imported where used
    from loopwise.record.recorder import EventSink
    from loopwise.record.run import Run


def default_detectors() -> list[Detector]:
    """One of each detector with its defaults (see ``docs/health.md``)."""
    return [
        NonFiniteDetector(), SpikeDetector(), PlateauDetector(), TrendDetector(),
        OverfittingDetector(), InputBoundDetector(), MemoryLeakDetector(), StalledDetector(),
    ]


class HealthMonitor:
    """Runs ``detectors`` over the streams it is fed; thread-safe (the sampler feeds it too).

    ``run``: where findings go as events (``health.<detector>``); None to only collect them.
    ``console``: where each finding is printed once (default ``sys.stderr`` at print time;
    None for silence).
    """

    def __init__(self, run: EventSink | None = None, *,
                 detectors: Sequence[Detector] | None = None,
                 console: TextIO | Literal["stderr"] | None = "stderr") -> None:
        if run is not None and not callable(getattr(run, "log_event", None)):
            raise TypeError(f"run must be a loopwise Run (with log_event), got "
                            f"{type(run).__name__}")
        chosen = default_detectors() if detectors is None else list(detectors)
        for d in chosen:
            if not isinstance(d, Detector):
                raise TypeError(f"{d!r} is not a health detector (it needs name, streams, "
                                "update, reset, state_dict and load_state_dict)")
        if console is not None and console != "stderr" and not hasattr(console, "write"):
            raise TypeError(f"console must be a text stream, 'stderr' or None; got {console!r}")
        self.run = run
        self.detectors = chosen
        self._console = console
        self._lock = threading.RLock()
        self._findings: list[Finding] = []
        self._last_system: dict[str, float] = {}
        self._system_count = 0

    # -- feeding -----------------------------------------------------------------------------
    def observe(self, key: str, step: int, value: float, *,
                time: float | None = None) -> list[Finding]:
        """One value of the step stream (``time``: when it happened, kept on findings)."""
        return self.observe_many(step, {key: value}, time=time)

    def observe_many(self, step: int, values: Mapping[str, float], *,
                     time: float | None = None) -> list[Finding]:
        """Several values of the step stream at one ``step``."""
        return self._feed("step", step, values, time)

    def observe_window(self, step: int, means: Mapping[str, float],
                       peaks: Mapping[str, tuple[int, float]], *,
                       time: float | None = None) -> list[Finding]:
        """One refresh window of the step stream: each key's mean at the window's last
        ``step``, and its highest point ``(step, value)``, which detectors with ``peaks = True``
        (the spike detector) judge instead of the mean, so that a finding names the point."""
        return self._feed("step", step, means, time, peaks=peaks)

    def observe_epoch(self, epoch: int, values: Mapping[str, float], *,
                      time: float | None = None, step: int | None = None) -> list[Finding]:
        """One evaluation (usually an epoch's train and validation metrics); ``step``: the
        global step where that epoch ended. Its findings say "epoch N" (and carry ``epoch`` in
        their data), at ``step`` when given."""
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of name to number, got "
                            f"{type(values).__name__}")
        step = check_optional_int(step, what="step", minimum=None)
        with self._lock:
            merged = {k: v for k, v in self._last_system.items() if "." not in k}
        merged.update(values)
        return self._feed("epoch", epoch, merged, time, at_step=step)

    def observe_system(self, time: float, values: Mapping[str, float]) -> list[Finding]:
        """One system sample (the SystemMonitor calls this from its thread)."""
        with self._lock:
            self._last_system = dict(values)
            self._system_count += 1
            step = self._system_count
        return self._feed("system", step, values, time)

    def _feed(self, stream: str, step: int, values: Mapping[str, float],
              time: float | None,
              peaks: Mapping[str, tuple[int, float]] | None = None,
              at_step: int | None = None) -> list[Finding]:
        step = check_int(step, what="step", minimum=None)
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of name to number, got "
                            f"{type(values).__name__}")
        clean = {}
        for key, value in values.items():
            check_key(key)  # the one key rule
            clean[key] = check_number(value, what=f"value of {key!r}")
        found: list[Finding] = []
        with self._lock:
            for detector in self.detectors:
                if stream not in detector.streams:
                    continue
                if peaks is not None and getattr(detector, "peaks", False):
                    for key, (at, value) in peaks.items():
                        found.extend(detector.update(at, {key: value}, time=time))
                else:
                    found.extend(detector.update(step, clean, time=time))
            if stream == "epoch":
                found = [_at_epoch(f, at_step) for f in found]
            self._findings.extend(found)
        for finding in found:
            self._report(finding)
        return found

    # -- reporting ---------------------------------------------------------------------------
    def _report(self, finding: Finding) -> None:
        run = self.run
        if run is not None and not getattr(run, "closed", False):
            run.log_event(finding.kind, finding.message, level=finding.level,
                          data=finding.event_data())
        stream = sys.stderr if self._console == "stderr" else self._console
        if stream is not None and finding.level in ("warning", "error"):
            from tqdm import tqdm  # keeps progress bars intact

            tqdm.write(f"loopwise {finding.level} [{finding.detector}]: {finding.message}",
                       file=stream)

    @property
    def findings(self) -> list[Finding]:
        """Every finding so far, in order."""
        with self._lock:
            return list(self._findings)

    def remove_detectors(self, names: Iterable[str]) -> list[Detector]:
        """Take the detectors called ``names`` out (e.g. when a TrendWatcher callback runs its
        own plateau/trend/overfitting detectors); return what was removed."""
        wanted = {names} if isinstance(names, str) else set(names)
        with self._lock:
            removed = [d for d in self.detectors if d.name in wanted]
            self.detectors = [d for d in self.detectors if d.name not in wanted]
        return removed

    # -- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            for d in self.detectors:
                d.reset()
            self._findings.clear()
            self._last_system = {}

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"detectors": [d.state_dict() for d in self.detectors],
                    "names": [d.name for d in self.detectors]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        names = [d.name for d in self.detectors]
        if list(state.get("names", ())) != names:
            raise ValueError(
                f"saved health state has detectors {state.get('names')!r} but this monitor has "
                f"{names!r}; build the HealthMonitor with the same detectors to resume"
            )
        with self._lock:
            for d, s in zip(self.detectors, state["detectors"], strict=True):
                d.load_state_dict(s)


def _at_epoch(finding: Finding, step: int | None) -> Finding:
    """A finding of the epoch stream, whose detectors count in epochs: "at epoch N (step S)",
    ``data["epoch"]``, and the global step where that epoch ended as its step (when known)."""
    epoch = finding.step

    def where(match: re.Match[str]) -> str:  # every step an epoch detector names is an epoch
        n = int(match.group(1))
        return f"at epoch {n}" + (f" (step {step})" if n == epoch and step is not None else "")

    message = re.sub(r"\bat step (\d+)\b", where, finding.message)
    return dataclasses.replace(finding, message=message, data={**finding.data, "epoch": epoch},
                               step=epoch if step is None else step)


def attached_health_monitor(run: object) -> HealthMonitor | None:
    """The run's HealthMonitor if one was attached, without making one (None for anything but
    a :class:`~loopwise.record.run.Run`: a rank that records nothing has none)."""
    from loopwise.record.run import Run

    return run.find_helper(HealthMonitor) if isinstance(run, Run) else None


def ensure_health_monitor(run: Run, *, detectors: Sequence[Detector] | None = None,
                          console: TextIO | Literal["stderr"] | None = "stderr") -> HealthMonitor:
    """The run's one HealthMonitor (made on the first call; later calls return it as it is).

    It is fed the run's system samples: from the SystemMonitor that
    :func:`loopwise.watch.system_run.ensure_system_monitor` started, now or later.
    """
    existing: HealthMonitor | None = run.find_helper(HealthMonitor)
    if existing is not None:
        return existing
    if getattr(run, "closed", False):
        raise RuntimeError("the run is closed; attach the health monitor while it is open")
    made: list[HealthMonitor] = []

    def make() -> HealthMonitor:
        made.append(HealthMonitor(run, detectors=detectors, console=console))
        return made[0]

    winner: HealthMonitor = run.helper(HealthMonitor, make)
    if made and winner is made[0]:
        from loopwise.watch.system import SystemMonitor

        system = run.find_helper(SystemMonitor)
        if system is not None:
            system.subscribe(winner.observe_system)
    return winner


def render_findings(findings: Iterable[Finding]) -> str:
    """Findings as text lines (``step  level  detector  message``), for a CLI or a summary."""
    rows = [(f.step, f.level, f.detector, f.message) for f in findings]
    if not rows:
        return "no health problems found"
    return render_table(rows, align="r", min_widths=(8, 7, 12), rule=None)
