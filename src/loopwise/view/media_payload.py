"""The JSON the report's and the dashboard's distribution, image and text views draw from
(``static/media.js``), read from one run's record.

* A histogram name becomes a distribution view: per step, the values at TensorBoard's nine
  quantiles (the minimum, the 6.68th, 15.87th, 30.85th percentiles, the median, ... the
  maximum: the normal distribution's -3..+3 sigma), drawn as nested bands; and a heatmap: every
  step's counts spread over one value grid shared by all steps (``HEAT_ROWS`` rows), scaled to
  that step's largest cell. At most ``MAX_HIST_STEPS`` steps (evenly chosen, the last kept).
* An image name becomes a strip with a step slider: at most ``max_per_name`` images (evenly
  chosen, the last kept). The report embeds them as ``data:`` URIs up to ``embed_mib`` MiB in
  all (the rest are listed as omitted); the dashboard gives each a URL of its image API. An
  image whose file fails its SHA-256 is left out and named in ``damaged`` (the others shown).
* A text name becomes its entries by step.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from loopwise.record.folder import IMAGES_DIR
from loopwise.record.histogram import Histogram
from loopwise.record.media_read import HistogramPoint, ImageEntry
from loopwise.record.reader import RunReader
from loopwise.record.verify import DamagedRecordError
from loopwise.utils.validate import check_int

QUANTILES = (0.0, 0.0668, 0.1587, 0.3085, 0.5, 0.6915, 0.8413, 0.9332, 1.0)
MAX_HIST_STEPS = 200
HEAT_ROWS = 48
MAX_TEXTS = 500  # entries per text name (the latest)
T = TypeVar("T")


def evenly(items: Sequence[T], limit: int) -> list[T]:
    """At most ``limit`` of ``items``, evenly spaced, the first and the last kept."""
    if len(items) <= limit:
        return list(items)
    if limit == 1:
        return [items[-1]]
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)]


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def heat_cells(hists: Sequence[Histogram], lo: float, hi: float, rows: int) -> list[list[float]]:
    """Each histogram's counts on ``rows`` equal cells from ``lo`` to ``hi`` (counts assumed
    even inside a bin), scaled to 0..1 by that histogram's largest cell (rounded to 3 digits)."""
    import numpy as np

    grid = np.linspace(lo, hi, rows + 1)
    out = []
    for h in hists:
        if h.total <= 0:
            out.append([0.0] * rows)
            continue
        cum = np.concatenate([[0.0], np.cumsum(h.counts, dtype=np.float64)])
        cells = np.diff(np.interp(grid, np.asarray(h.edges()), cum))
        top = float(cells.max()) or 1.0
        out.append([round(float(c) / top, 3) for c in cells])
    return out


def histogram_view(points: Sequence[HistogramPoint]) -> dict[str, Any]:
    """One histogram name's distribution view (see the module doc)."""
    shown = evenly(points, MAX_HIST_STEPS)
    hists = [p.histogram for p in shown]
    with_values = [h for h in hists if h.total > 0]
    lo = min((h.lo for h in with_values), default=0.0)
    hi = max((h.hi for h in with_values), default=1.0)
    if hi <= lo:  # one value over every step: a grid around it
        lo, hi = lo - 0.5, hi + 0.5
    last = shown[-1].histogram
    return {
        "steps": [p.step for p in shown], "total": len(points),
        "quantiles": [[_finite(v) for v in h.quantiles(QUANTILES)] for h in hists],
        "nonfinite": [h.nan + h.neg_inf + h.pos_inf for h in hists],
        "heat": {"lo": lo, "hi": hi, "rows": HEAT_ROWS,
                 "cells": heat_cells(hists, lo, hi, HEAT_ROWS)},
        "last": {"step": shown[-1].step, "edges": last.edges(), "counts": list(last.counts)},
    }


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def media_payload(reader: RunReader, *, image_src: Callable[[ImageEntry], str] | None = None,
                  max_per_name: int = 50, embed_mib: float = 32.0,
                  verified: set[tuple[int, int]] | None = None) -> dict[str, Any]:
    """Histograms, images and texts of the run read by ``reader``, for ``static/media.js``.
    ``image_src`` gives an image's URL (the dashboard: the image files are checked here, those
    in ``verified`` only when changed, see :meth:`RunReader.damaged_images`); without it images
    are embedded as ``data:`` URIs within ``embed_mib`` (the report: each checked as read)."""
    max_per_name = check_int(max_per_name, what="max_per_name", minimum=1)
    damaged: list[str] = []  # a table whose checksum fails is left out and named here
    histograms: dict[str, Any] = {}
    for name in reader.histogram_names():
        points = _intact(reader.histograms, name, damaged)
        if points:
            histograms[name] = histogram_view(points)
    budget = int(embed_mib * 2**20)
    images: dict[str, Any] = {}
    bad: dict[str, str] = {}  # digest: the damaged image's part (the dashboard: checked once)
    if image_src is not None and reader.image_names():
        for exc in reader.damaged_images(verified=verified):
            if exc.path.parent.name == IMAGES_DIR:
                bad[exc.path.stem] = exc.part
            else:  # the image index itself
                _name(damaged, exc.part)
    for name in reader.image_names():
        entries = _intact(reader.images, name, damaged)
        if not entries:
            continue
        shown = evenly(entries, max_per_name)
        items, omitted = [], len(entries) - len(shown)
        for entry in shown:
            if entry.digest in bad:
                _name(damaged, bad[entry.digest])
                omitted += 1
                continue
            if image_src is None:
                if entry.bytes > budget or not entry.path.is_file():
                    omitted += 1
                    continue
                try:
                    png = reader.image_bytes(entry)  # checked against its SHA-256 as read
                except DamagedRecordError as exc:
                    bad[entry.digest] = exc.part
                    _name(damaged, exc.part)
                    omitted += 1
                    continue
                budget -= entry.bytes
                src = data_uri(png)
            else:
                src = image_src(entry)
            items.append({"step": entry.step, "src": src, "width": entry.width,
                          "height": entry.height})
        images[name] = {"items": items, "total": len(entries), "omitted": omitted}
    texts = {name: [{"step": t.step, "text": t.text} for t in kept[-MAX_TEXTS:]]
             for name in reader.text_names() if (kept := _intact(reader.texts, name, damaged))}
    return {"histograms": histograms, "images": images, "texts": texts, "damaged": damaged}


def _intact(read: Callable[[str], list[T]], name: str, damaged: list[str]) -> list[T]:
    """``read(name)``, or nothing when its table fails its checksum (named in ``damaged``)."""
    try:
        return read(name)
    except DamagedRecordError as exc:
        _name(damaged, exc.part)
        return []


def _name(damaged: list[str], part: str) -> None:
    if part not in damaged:
        damaged.append(part)
