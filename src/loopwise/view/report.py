"""The HTML report: one self-contained file per run that opens with no network and no server.

It inlines uPlot, loopwise's front-end script and style, and the run's data (each series reduced
to at most ``max_points`` points by the min/max envelope of :func:`loopwise.record.downsample`,
so spikes survive). A Content-Security-Policy in the page forbids every network request.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopwise.record.folder import REPORT_FILE
from loopwise.record.reader import RunReader
from loopwise.utils.atomic import atomic_write_text
from loopwise.view.media_payload import media_payload
from loopwise.view.payload import run_payload
from loopwise.view.static_files import SCRIPTS, static_text

DEFAULT_POINTS = 4000
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'")


def script_json(data: Any) -> str:
    """``data`` as JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and
    ``&`` are written as ``\\u`` escapes, so no value can close the element."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_report(reader: RunReader, *, max_points: int = DEFAULT_POINTS,
                  ending: Mapping[str, Any] | None = None) -> str:
    """The report of the run read by ``reader``, as an HTML string (``ending``: see
    :func:`~loopwise.view.payload.run_payload`)."""
    if not isinstance(reader, RunReader):
        raise TypeError(f"reader must be a RunReader, got {type(reader).__name__}")
    payload = run_payload(reader, max_points=max_points, ending=ending)
    payload["media"] = media_payload(reader)  # images embedded, within the report's budget
    title = html.escape(f"loopwise report: {payload['name']}")
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{title}</title>\n"
        f"<style>{static_text('uPlot.min.css')}\n{static_text('loopwise.css')}\n"
        f"{static_text('media.css')}</style>\n"
        "</head><body><div id=\"lw-app\"></div>\n"
        f"<script type=\"application/json\" id=\"lw-data\">{script_json(payload)}</script>\n"
        f"<!-- uPlot (MIT license, see LICENSE in loopwise/view/static/uplot) -->\n"
        f"<script>{static_text('uPlot.iife.min.js')}</script>\n"
        + "".join(f"<script>{static_text(name)}</script>\n" for name in SCRIPTS) +
        "</body></html>\n"
    )


def write_report(run_path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
                 max_points: int = DEFAULT_POINTS,
                 ending: Mapping[str, Any] | None = None) -> Path:
    """Write the report of the run in ``run_path`` to ``out`` (default ``<run>/report.html``),
    atomically; return its path."""
    if not isinstance(run_path, (str, os.PathLike)):
        raise TypeError(f"run_path must be a run folder path, got {type(run_path).__name__}")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a file path or None, got {type(out).__name__}")
    reader = RunReader(run_path)
    target = Path(run_path) / REPORT_FILE if out is None else Path(out)
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder; give a file name such as report.html")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot write {target}: folder {target.parent} does not exist")
    atomic_write_text(target, render_report(reader, max_points=max_points, ending=ending))
    return target


def report_at_end(run_path: str | os.PathLike[str], *,
                  ending: Mapping[str, Any] | None = None) -> Path | None:
    """The report written at the end of ``fit`` and ``Workflow.run()``: the path, or None when
    it could not be written (the reason goes to the ``loopwise`` logger as a warning: training's
    result stands, and ``loopwise report RUN`` can write it later). ``ending``: the status and
    end time of a run still closing (the report is written before its exporters close, so that
    they upload it)."""
    import logging

    try:
        return write_report(run_path, ending=ending)
    except Exception as exc:  # a report is a view: it must not turn a finished run into an error
        logging.getLogger("loopwise").warning(
            "could not write the HTML report of %s (%s: %s); write it later with "
            "`loopwise report %s`", run_path, type(exc).__name__, exc, run_path)
        return None
