"""The dashboard's run table in headless Chromium over a generated 1,000-run sweep: sorting,
the server-side filter, colour-by, parallel coordinates and scatter drawn for the selected
runs; and a live run's row updating in place without losing focus, selection or scroll.
Screenshots are kept in the artifacts folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _sweep import clone_sweep, make_sweep
from _view_kit import SRC, Server, wait_until

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

ROWS = "#lw-run-table tr[data-run]"


@pytest.fixture(scope="module")
def sweep_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("table") / "runs"
    clone_sweep(root, 1000)
    server = Server(root)
    try:
        yield server
    finally:
        server.stop()


def _open(browser: Any, url: str) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector(ROWS)
    return page, errors


def _column(page: Any, col: str) -> list[str]:
    return [td.text_content() for td in page.query_selector_all(f"{ROWS} td[data-col='{col}']")]


def _shown(page: Any) -> list[str]:
    return [r.get_attribute("data-run") for r in page.query_selector_all(ROWS)]


def test_sort_filter_and_colour_a_thousand_runs(sweep_server: Server, browser: Any,
                                                artifacts: Path) -> None:
    page, errors = _open(browser, sweep_server.url + "/")
    assert page.text_content("#lw-count").startswith("1000 of 1000 runs")
    assert len(_shown(page)) < 100  # virtualised: only the rows in view are in the page
    page.click("#lw-run-table th[data-col='best:epoch/val_loss']")  # ascending
    wait_until(lambda: _column(page, "config:model.width")[:1] == ["512"], what="sorted rows")
    losses = [float(t) for t in _column(page, "best:epoch/val_loss")]
    assert losses == sorted(losses) and len(losses) > 20
    page.click("#lw-run-table th[data-col='best:epoch/val_loss']")  # descending
    wait_until(lambda: float(_column(page, "best:epoch/val_loss")[0]) > losses[-1],
               what="the worst runs first")
    worst = [float(t) for t in _column(page, "best:epoch/val_loss")]
    assert worst == sorted(worst, reverse=True)
    # the same where language as the CLI, evaluated by the server
    rows = page.evaluate("window.LoopwiseRunsTable.state.rows")
    expected = sum(r["config"]["optimizer.name"] == "adam" and r["config"]["model.width"] >= 256
                   for r in rows)
    assert 0 < expected < 1000
    page.fill("#lw-where", "optimizer.name == adam and model.width >= 256")
    page.press("#lw-where", "Enter")
    wait_until(lambda: page.text_content("#lw-count").startswith(f"{expected} of 1000"),
               what="the filtered count")
    names = set(_shown(page))
    for r in rows:
        if r["name"] in names:
            assert r["config"]["optimizer.name"] == "adam" and r["config"]["model.width"] >= 256
    page.fill("#lw-where", "optimizer.name == adam and")
    page.press("#lw-where", "Enter")
    wait_until(lambda: "ends where a key, a number or a string was expected" in page.text_content(
        "#lw-where-error"), what="the error naming the problem")
    page.fill("#lw-where", "")
    page.press("#lw-where", "Enter")
    wait_until(lambda: page.text_content("#lw-count").startswith("1000 of 1000"),
               what="the filter cleared")
    page.fill("#lw-search", "sweep-012")
    wait_until(lambda: sorted(_shown(page)) == [f"sweep-012{i}" for i in range(10)],
               what="free-text search")
    page.fill("#lw-search", "")
    # colour by a discrete key: one colour per optimizer, the same in the legend and the rows
    page.select_option("#lw-color-by", "optimizer.name")
    legend = page.evaluate("""() => Array.from(document.querySelectorAll(
        '#lw-legend .lw-legend-item')).map(e => [e.textContent, e.firstChild.style.background])""")
    assert [name for name, _ in legend] == ["adam", "adamw", "lion", "sgd"]
    assert len({colour for _, colour in legend}) == 4
    swatch = page.evaluate("""() => { const out = {}; document.querySelectorAll(
        '#lw-run-table tr[data-run]').forEach(tr => { out[tr.getAttribute('data-run')] =
        tr.querySelector('.lw-swatch').style.background; }); return out; }""")
    by_value = dict(legend)
    for r in rows:
        if r["name"] in swatch:
            assert swatch[r["name"]] == by_value[r["config"]["optimizer.name"]]
    # a continuous key gets a scale; the palette of a discrete key does not repeat within 20
    page.select_option("#lw-color-by", "optimizer.lr")
    assert "(log)" in page.text_content("#lw-legend")
    distinct = page.evaluate("""() => { const c = window.LoopwiseColors.coloring(
        Array.from({length: 20}, (_, i) => 'v' + i)); return new Set(Array.from(
        {length: 20}, (_, i) => c.color('v' + i))).size; }""")
    assert distinct == 20
    stable = page.evaluate("""() => [window.LoopwiseColors.runColor('sweep-0007'),
        window.LoopwiseColors.runColor('sweep-0007')]""")
    assert stable[0] == stable[1]
    page.screenshot(path=str(artifacts / "runs-table-colour.png"))
    # select the runs of a filter, then the parallel coordinates and the scatter draw them
    page.select_option("#lw-color-by", "optimizer.name")
    page.check("#lw-group")
    page.fill("#lw-where", "seed < 40")
    page.press("#lw-where", "Enter")
    wait_until(lambda: page.text_content("#lw-count").startswith("40 of 1000"), what="40 runs")
    page.check("#lw-select-all")
    wait_until(lambda: len(page.query_selector_all("#lw-parcoords path.lw-line")) == 40,
               what="40 lines in the parallel coordinates")
    labels = [t.text_content() for t in page.query_selector_all("#lw-parcoords .lw-axis-label")]
    assert "optimizer.lr" in labels and "epoch/val_loss (best)" in labels
    assert len(page.query_selector_all("#lw-scatter circle.lw-dot-run")) == 40
    assert page.query_selector_all("#lw-run-table tr.lw-group-row")  # grouped by optimizer
    # the metric charts overlay the selected runs, in the same colours
    wait_until(lambda: page.evaluate("window.__loopwise.state.selected.length") == 30,
               what="the overlays of the first 30 selected runs")
    page.screenshot(path=str(artifacts / "runs-table-selected.png"))
    wait_until(lambda: len(page.query_selector_all("#lw-chart .u-legend th")) == 31,
               what="30 runs overlaid in the metric chart")
    colours = page.evaluate("""() => window.__loopwise.plot.series.slice(1).map(s =>
        [s.label, s._stroke || s.stroke()])""")
    for label, colour in colours[:5]:  # the chart takes each run's colour from the table
        assert colour == page.evaluate(f"window.LoopwiseColors.colorOf({label!r})")
    assert len(page.query_selector_all("#lw-runs tr[data-run]")) == 30  # the selected only
    page.query_selector("#lw-app").screenshot(path=str(artifacts / "runs-table-overlays.png"))
    link = page.get_attribute(f"{ROWS} td.lw-name a", "href")
    assert link is not None and link.startswith("./?view=run&run=sweep-")  # its run page
    assert errors == []


def _swatches(page: Any) -> dict[str, str]:
    out: dict[str, str] = page.evaluate("""() => { const out = {}; document.querySelectorAll(
        '#lw-run-table tr[data-run]').forEach(tr => { out[tr.getAttribute('data-run')] =
        tr.querySelector('.lw-swatch').style.background; }); return out; }""")
    return out


def test_a_sweep_of_twenty_runs_has_twenty_colours_that_stay(tmp_path: Path, browser: Any,
                                                             artifacts: Path) -> None:
    root = tmp_path / "runs"
    names = make_sweep(root, 20, steps=6, epochs=2)
    server = Server(root)
    try:
        page, errors = _open(browser, server.url + "/")
        wait_until(lambda: len(_swatches(page)) == 20, what="20 rows")
        first = _swatches(page)
        assert page.text_content("#lw-run-table th[data-col='start']").startswith("start (UTC)")
        assert _column(page, "start")[-1] == "2023-11-14 22:13:20"  # sweep-0000, in UTC
        assert len(set(first.values())) == 20  # no two runs of the sweep share a colour
        page.click("#lw-run-table th[data-col='best:epoch/val_loss']")  # another order
        wait_until(lambda: _shown(page) != sorted(_shown(page), reverse=True),
                   what="the rows sorted by the metric")
        assert _swatches(page) == first  # the colour is the run's, not its row's
        page.screenshot(path=str(artifacts / "runs-table-twenty.png"))
        make_sweep(root, 1, steps=6, epochs=2, start=20)  # a newer run arrives
        wait_until(lambda: len(_swatches(page)) == 21, timeout=20, what="the 21st run")
        after = _swatches(page)
        assert {n: after[n] for n in names} == first  # older runs keep their colours
        assert after["sweep-0020"] not in first.values()  # the palette goes on
        # a pin puts the oldest run on top, and it stays there after a reload
        page.click(f"{ROWS}[data-run='sweep-0000'] button.lw-pinbtn")
        wait_until(lambda: _shown(page)[:1] == ["sweep-0000"], what="the pinned run on top")
        assert page.get_attribute(f"{ROWS}[data-run='sweep-0000'] button.lw-pinbtn",
                                  "title") == "unpin"
        page.reload()
        page.wait_for_selector(ROWS)
        wait_until(lambda: _shown(page)[:1] == ["sweep-0000"], what="the pin kept on reload")
        # the column chooser: a config column taken away and put back
        col = "config:optimizer.lr"
        assert page.query_selector(f"#lw-run-table th[data-col='{col}']") is not None
        page.click("#lw-columns summary")
        page.uncheck(f"#lw-columns input[value='{col}']")
        wait_until(lambda: page.query_selector(f"#lw-run-table th[data-col='{col}']") is None,
                   what="the column gone")
        assert page.query_selector(f"{ROWS} td[data-col='{col}']") is None
        page.check(f"#lw-columns input[value='{col}']")
        wait_until(lambda: len(_column(page, col)) == 21, what="the column back in every row")
        # a click on a run's name opens its page
        page.click(f"{ROWS}[data-run='sweep-0003'] td.lw-name a")
        page.wait_for_selector("h1")
        wait_until(lambda: page.text_content("h1") == "sweep-0003", what="the run's page")
        assert "view=run" in page.url and "run=sweep-0003" in page.url
        assert errors == []
    finally:
        server.stop()


def test_a_live_run_updates_in_place(tmp_path: Path, browser: Any, artifacts: Path) -> None:
    root = tmp_path / "runs"
    clone_sweep(root, 80, templates=8)
    env = {**os.environ, "PYTHONPATH": SRC}
    writer = subprocess.Popen([sys.executable, str(Path(__file__).with_name("live_writer.py")),
                               str(root), "live"], env=env, stdout=subprocess.PIPE, text=True)
    server = None
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "started"
        server = Server(root)
        page, errors = _open(browser, server.url + "/")
        page.wait_for_selector(f"{ROWS}[data-run='live']")
        live = f"{ROWS}[data-run='live']"
        assert page.text_content(f"{live} td[data-col='status']") == "running"
        page.check(f"{ROWS}[data-run='sweep-0077'] input[type=checkbox]")
        page.check(f"{live} input[type=checkbox]")
        page.evaluate("document.getElementById('lw-table-wrap').scrollTop = 40")
        page.fill("#lw-search", "")  # focus in the search box, where a user types
        page.focus("#lw-search")
        before = int(page.text_content(f"{live} td[data-col='steps']"))
        wait_until(lambda: int(page.text_content(f"{live} td[data-col='steps']")) >= before + 5,
                   timeout=20, what="the live run's steps growing", page=page)
        assert page.evaluate("document.activeElement.id") == "lw-search"
        assert page.evaluate("document.getElementById('lw-table-wrap').scrollTop") == 40
        assert page.is_checked(f"{live} input[type=checkbox]")
        assert page.is_checked(f"{ROWS}[data-run='sweep-0077'] input[type=checkbox]")
        page.screenshot(path=str(artifacts / "runs-table-live.png"))
        (root / "stop").touch()
        writer.wait(timeout=30)
        wait_until(lambda: page.text_content(f"{live} td[data-col='status']") == "finished",
                   timeout=20, what="the finished status", page=page)
        assert errors == []
    finally:
        if writer.poll() is None:
            writer.terminate()
            writer.wait()
        if server is not None:
            server.stop()
