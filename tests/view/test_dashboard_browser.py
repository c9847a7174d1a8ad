"""The live dashboard in headless Chromium, served by ``loopwise ui`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _view_kit import HOSTILE, INK, SRC, wait_until

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


def _legend(page: Any) -> list[str]:
    return [t.text_content() for t in page.query_selector_all("#lw-chart .u-legend th")]


def test_dashboard_lists_overlays_and_escapes(runs_root: Path, browser: Any,
                                              server_factory: Any, artifacts: Path) -> None:
    server = server_factory(runs_root)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: errors.append("dialog: " + d.message))
    page.goto(server.url + "/")
    page.wait_for_selector("#lw-runs tr[data-run]")
    names = [r.get_attribute("data-run") for r in page.query_selector_all("#lw-runs tr[data-run]")]
    assert sorted(names) == ["alpha-1", "alpha-2", "beta"]
    assert page.text_content("#lw-runs tr[data-run='beta'] .lw-status") == "finished"
    for name in ("alpha-1", "alpha-2"):
        page.check(f"#lw-runs tr[data-run='{name}'] input")
    if page.is_checked("#lw-runs tr[data-run='beta'] input"):  # the newest is shown first
        page.uncheck("#lw-runs tr[data-run='beta'] input")
    wait_until(lambda: _legend(page) == ["step", "alpha-1", "alpha-2"], what="two runs overlaid")
    assert page.query_selector("#lw-chart canvas").evaluate(INK) > 500
    wait_until(lambda: len(page.query_selector_all("#lw-chart .lw-mark-checkpoint")) == 6,
               what="the checkpoints of both runs marked on the chart")
    assert "alpha-2: checkpoint of epoch 2" in [
        m.get_attribute("title").split(" at step 200: ")[-1]
        for m in page.query_selector_all("#lw-chart .lw-mark-checkpoint")]
    wait_until(lambda: {"alpha-1", "alpha-2"} <= {
        td.text_content() for td in page.query_selector_all("#lw-events td:nth-child(2)")},
        what="the events of both runs")
    assert "checkpoint of epoch 3" in page.text_content("#lw-events")
    page.screenshot(path=str(artifacts / "dashboard.png"))
    # the hostile metric name, as text in the picker and the chart title
    page.check("#lw-runs tr[data-run='beta'] input")
    wait_until(lambda: HOSTILE in [o.text_content() for o in
                                   page.query_selector_all("#lw-metric option")],
               what="the hostile metric in the picker")
    page.select_option("#lw-metric", HOSTILE)
    wait_until(lambda: page.text_content("#lw-chart .u-title") == HOSTILE, what="its chart")
    assert page.query_selector("img") is None and errors == []
    page.screenshot(path=str(artifacts / "dashboard-hostile.png"))


def test_a_point_from_a_training_process_appears(tmp_path: Path, browser: Any,
                                                 server_factory: Any, artifacts: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    env = {**os.environ, "PYTHONPATH": SRC}
    writer = subprocess.Popen([sys.executable, str(Path(__file__).with_name("live_writer.py")),
                               str(root), "live"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "started"
        server = server_factory(root)
        page = browser.new_page(viewport={"width": 1280, "height": 700})
        page.goto(server.url + "/?run=live&metric=loss")
        page.wait_for_selector("#lw-runs tr[data-run='live']")
        assert page.text_content("#lw-runs tr[data-run='live'] .lw-status") == "running"

        def last_step() -> int:
            return int(page.evaluate(
                "() => { const p = window.__loopwise.plot; return p ? "
                "Math.max(...p.data[0]) : 0; }"))

        first = wait_until(last_step, what="the first chart")
        wait_until(lambda: last_step() >= first + 5, timeout=10,
                   what="new points in the chart")
        shown = int(page.text_content("#lw-runs tr[data-run='live'] .lw-steps"))
        assert shown >= first + 5
        page.screenshot(path=str(artifacts / "dashboard-live.png"))
        (root / "stop").touch()
        writer.wait(timeout=30)
        wait_until(lambda: page.text_content("#lw-runs tr[data-run='live'] .lw-status")
                   == "finished", what="the finished status")
    finally:
        if writer.poll() is None:
            writer.terminate()
            writer.wait()


def test_zoom_asks_the_server_and_the_axis_switches(runs_root: Path, browser: Any,
                                                    server_factory: Any) -> None:
    server = server_factory(runs_root, token="tok-for-the-test")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/series/" in r.url else None)
    page.goto(server.url + "/?token=tok-for-the-test&run=alpha-2&metric=loss")
    wait_until(lambda: _legend(page) == ["step", "alpha-2"], what="the chart")
    box = page.query_selector("#lw-chart .u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.4, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
    page.mouse.up()
    zoomed = wait_until(lambda: [u for u in asked if "start=" in u and "end=" in u],
                        what="a windowed request", page=page)
    assert "points=2000" in zoomed[-1] and "x=step" in zoomed[-1]
    wait_until(lambda: page.evaluate("Math.min(...window.__loopwise.plot.data[0])") > 100
               and page.evaluate("Math.max(...window.__loopwise.plot.data[0])") < 200,
               what="the zoomed window drawn")
    page.select_option("#lw-axis", "epoch")
    wait_until(lambda: _legend(page)[:1] == ["epoch"], what="the epoch axis")
    assert page.evaluate("Math.max(...window.__loopwise.plot.data[0])") == 3.0
    refused = page.goto(server.url + "/")  # no token, no page
    assert refused is not None and refused.status == 401


def test_a_damaged_series_is_named_on_the_page_and_the_others_drawn(
        tmp_path: Path, browser: Any, server_factory: Any, artifacts: Path) -> None:
    import struct

    from loopwise.record import Run

    with Run.create(tmp_path / "runs", "d") as run:
        for step in range(1, 301):
            run.log_scalars({"loss": 1.0 / step, "acc": step / 300}, step=step)
    store = run.path / "store.sqlite"
    data = bytearray(store.read_bytes())
    data[data.find(struct.pack("<d", 1.0 / 7)) + 1] ^= 0x02
    store.write_bytes(bytes(data))
    server = server_factory(tmp_path / "runs")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    page.wait_for_selector("#lw-runs tr[data-run='d']")
    if not page.is_checked("#lw-runs tr[data-run='d'] input"):
        page.check("#lw-runs tr[data-run='d'] input")
    wait_until(lambda: "record_damaged" in (page.text_content("#lw-events") or ""),
               what="the damage in the events")
    assert f"{store} is corrupt (run 'd': series 'loss' failed its checksum)" in \
        page.text_content("#lw-events")
    options = [o.text_content() for o in page.query_selector_all("#lw-metric option")]
    assert "acc" in options and "loss" not in options
    page.select_option("#lw-metric", "acc")
    wait_until(lambda: _legend(page) == ["step", "d"], what="the intact series drawn")
    assert page.query_selector("#lw-chart canvas").evaluate(INK) > 500 and errors == []
    page.screenshot(path=str(artifacts / "dashboard-damaged.png"))
