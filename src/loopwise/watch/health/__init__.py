"""Training-health detectors: small, pure, individually configurable.

Each detector watches the metric or system streams for one problem and reports a
:class:`Finding` when an episode starts. :class:`HealthMonitor` feeds them, records findings as
run events (``health.<detector>``) and prints each once. :func:`analyze_run` replays a finished
run. See ``docs/health.md``.
"""

from loopwise.watch.health.base import Detector, Finding, KeyedDetector
from loopwise.watch.health.input_bound import InputBoundDetector
from loopwise.watch.health.memory_leak import MemoryLeakDetector
from loopwise.watch.health.nonfinite import NonFiniteDetector
from loopwise.watch.health.overfitting import OverfittingDetector
from loopwise.watch.health.plateau import PlateauDetector
from loopwise.watch.health.replay import analyze_run
from loopwise.watch.health.runner import (
    HealthMonitor,
    default_detectors,
    ensure_health_monitor,
    render_findings,
)
from loopwise.watch.health.spike import SpikeDetector, robust_z
from loopwise.watch.health.stalled import StalledDetector
from loopwise.watch.health.trend import TrendDetector

__all__ = [
    "Detector",
    "Finding",
    "HealthMonitor",
    "InputBoundDetector",
    "KeyedDetector",
    "MemoryLeakDetector",
    "NonFiniteDetector",
    "OverfittingDetector",
    "PlateauDetector",
    "SpikeDetector",
    "StalledDetector",
    "TrendDetector",
    "analyze_run",
    "default_detectors",
    "ensure_health_monitor",
    "render_findings",
    "robust_z",
]
