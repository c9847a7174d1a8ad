"""``loopwise doctor`` on the record's gradient histograms (``grads/<param>``, recorded by
``histogram_every`` or ``TensorBoardExporter.log_histograms``): a gradient that collapses to
zero (vanishing) or whose largest magnitude grows 100x or more over the run (exploding) is a
finding, with what to try in ``doctor.ADVICE``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopwise.record.reader import RunReader
from loopwise.watch.health import Finding

if TYPE_CHECKING:  # numpy comes with the histograms, when the run has some
    from loopwise.record.histogram import Histogram

GROWTH = 100.0  # the largest |gradient| this many times its first value: exploding
COLLAPSE = 1e-3  # the last largest |gradient| under this share of its peak ...
TINY = 1e-6  # ... and under this absolute value: vanishing


def scale(hist: Histogram) -> float:
    """The largest magnitude of a histogram's finite values (0 when it has none)."""
    return max(abs(hist.lo), abs(hist.hi)) if hist.total else 0.0


def gradient_findings(reader: RunReader) -> list[Finding]:
    """One finding per gradient histogram that vanished or exploded (see the module doc)."""
    out: list[Finding] = []
    for name in reader.histogram_names():
        if not (name.startswith("grads/") or "grad" in name.split("/")[0]):
            continue
        points = reader.histograms(name)
        if len(points) < 2:
            continue
        first = scale(points[0].histogram)
        nonfinite = next((p for p in points if p.histogram.nan + p.histogram.pos_inf
                          + p.histogram.neg_inf), None)
        grown = next((p for p in points[1:] if first > 0 and scale(p.histogram)
                      >= GROWTH * first), None)
        at = min((p for p in (grown, nonfinite) if p is not None), key=lambda p: p.step,
                 default=None)
        if at is not None:
            what = ("holds non-finite values (NaN or infinity)" if at is nonfinite else
                    f"grew to {scale(at.histogram):.3g}, {scale(at.histogram) / first:.0f}x "
                    f"its {first:.3g} at step {points[0].step}")
            out.append(Finding("exploding_gradient", name, at.step,
                               f"gradient {name} is exploding: its largest |value| {what}",
                               data={"first": first, "at": scale(at.histogram)}))
            continue
        peak = max(points, key=lambda p: scale(p.histogram))
        last = points[-1]
        if (scale(peak.histogram) > 0 and scale(last.histogram) < TINY
                and scale(last.histogram) <= COLLAPSE * scale(peak.histogram)):
            out.append(Finding(
                "vanishing_gradient", name, last.step,
                f"gradient {name} collapsed to zero: its largest |value| fell from "
                f"{scale(peak.histogram):.3g} (step {peak.step}) to "
                f"{scale(last.histogram):.3g} (step {last.step})",
                data={"peak": scale(peak.histogram), "last": scale(last.histogram)}))
    return out
