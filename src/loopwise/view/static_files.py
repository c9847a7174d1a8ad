"""The front-end files shipped inside the package (``loopwise/view/static``): uPlot, vendored
from its npm package at a pinned version with its license, and loopwise's own script and style,
which the report inlines and the dashboard serves."""

from __future__ import annotations

from importlib import resources

# name served -> path inside loopwise/view/static
STATIC_FILES = {
    "uPlot.iife.min.js": "uplot/uPlot.iife.min.js",
    "uPlot.min.css": "uplot/uPlot.min.css",
    "uPlot.LICENSE.txt": "uplot/LICENSE",
    "format.js": "format.js",
    "dom.js": "dom.js",
    "chart.js": "chart.js",
    "runview.js": "runview.js",
    "loopwise.js": "loopwise.js",
    "loopwise.css": "loopwise.css",
    "media.js": "media.js",
    "media.css": "media.css",
    "run_colors.js": "run_colors.js",
    "runs_table.js": "runs_table.js",
    "runs_table.css": "runs_table.css",
    "dashboard.html": "dashboard.html",
}

# loopwise's scripts in the order a page loads them (each adds to window.LW; loopwise.js starts)
SCRIPTS = ("format.js", "dom.js", "chart.js", "runview.js", "loopwise.js", "media.js")


def static_text(name: str) -> str:
    """The text of one shipped front-end file, by its served name."""
    if name not in STATIC_FILES:
        raise KeyError(f"no static file {name!r}; known: {', '.join(STATIC_FILES)}")
    path = resources.files("loopwise.view").joinpath("static", *STATIC_FILES[name].split("/"))
    return path.read_text(encoding="utf-8")
