"""The dashboard's run page and its home, live, in headless Chromium: a run's own page (what the
report shows, updated as the run writes), downloads, the report link, the run list updated in
place, smoothing that keeps the zoom, and an empty or missing root. One browser and one server
for the module."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _view_kit import (
    CHROMIUM,
    CHROMIUM_ARGS,
    INK,
    SRC,
    Server,
    _need_chromium,
    make_run,
    wait_until,
)

from loopwise.record import Run

LONG = "encoder/layers/attention/a_metric_name_long_enough_to_spill_out_of_its_menu_and_chart"

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    _need_chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def live_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A finished run ``alpha`` (train and validation, events, system) and a run ``live`` that a
    training process keeps writing to until the module ends."""
    root = tmp_path_factory.mktemp("runpage") / "runs"
    make_run(root, "alpha", seed=1)
    make_run(root, "gamma", seed=2, steps=30, extra_key=LONG)
    env = {**os.environ, "PYTHONPATH": SRC}
    writer = subprocess.Popen([sys.executable, str(Path(__file__).with_name("live_writer.py")),
                               str(root), "live"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "started"
        yield root
    finally:
        (root / "stop").touch()
        try:
            writer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            writer.kill()
            writer.wait()


@pytest.fixture(scope="module")
def server(live_root: Path) -> Iterator[Server]:
    s = Server(live_root, token="tok-for-the-runpage")
    try:
        yield s
    finally:
        s.stop()


def _open(chromium: Any, url: str, **context: Any) -> Any:
    ctx = chromium.new_context(**{"viewport": {"width": 1280, "height": 900}, **context})
    page = ctx.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    return page


def _legend(card: Any) -> list[str]:
    return [th.text_content() for th in card.query_selector_all(".u-legend th")]


def test_a_click_on_a_run_opens_its_page(chromium: Any, server: Server, artifacts: Path) -> None:
    page = _open(chromium, server.url + "/?token=tok-for-the-runpage")
    page.wait_for_selector("#lw-runs tr[data-run='alpha'] a")
    page.click("#lw-runs tr[data-run='alpha'] a")
    page.wait_for_selector(".lw-chart[data-title='loss'] canvas")
    assert "view=run" in page.url and "run=alpha" in page.url
    assert page.text_content("h1") == "alpha"
    loss = page.query_selector(".lw-chart[data-title='loss']")
    assert _legend(loss) == ["step", "loss", "epoch/loss", "epoch/val_loss"]  # overlaid
    assert loss.query_selector("canvas").evaluate(INK) > 500
    titles = [t.text_content() for t in page.query_selector_all(".lw-metrics .u-title")]
    assert titles == ["loss", "accuracy"]
    assert [t.text_content() for t in page.query_selector_all(".lw-system .u-title")] == [
        "cpu_pct", "proc_rss_mib", "steps_per_s", "data_wait_pct"]
    assert "checkpoint of epoch 3" in page.text_content(".lw-events")
    best = loss.query_selector(".lw-mark-best").get_attribute("title")  # no event said which
    assert best.startswith("best_epoch at step 300: best epoch/val_loss 0.2")
    assert best.endswith(" at epoch 3")
    assert "batch_size" in page.text_content("body")  # the config
    page.fill("#lw-filter", "acc")
    assert not loss.is_visible() and page.is_visible(".lw-chart[data-title='accuracy']")
    page.fill("#lw-filter", "")
    page.screenshot(path=str(artifacts / "runpage.png"), full_page=True)
    # a download of any series, the whole of it
    href = loss.query_selector("a.lw-dl").get_attribute("href")
    body = page.evaluate("url => fetch(url).then(r => r.text())", href)
    lines = body.splitlines()
    assert lines[0] == "step,wall_time,value" and len(lines) == 301
    jsonl = [a.get_attribute("href") for a in loss.query_selector_all("a.lw-dl")
             if a.text_content() == "epoch/val_loss JSONL"]
    assert len(page.evaluate("url => fetch(url).then(r => r.text())", jsonl[0]).splitlines()) == 3
    # the report, from the page's link
    page.click("#lw-report")
    page.wait_for_selector(".lw-chart canvas")
    assert page.text_content("h1") == "alpha" and page.errors == []


def test_the_run_page_follows_a_live_run_and_keeps_the_zoom(chromium: Any, server: Server,
                                                           artifacts: Path) -> None:
    page = _open(chromium, server.url + "/?token=tok-for-the-runpage&view=run&run=live")
    page.wait_for_selector(".lw-chart[data-title='loss'] canvas")
    last = ("() => { const u = window.__loopwise.plots()[0]; "
            "return Math.max(...u.data[0]); }")
    first = page.evaluate(last)
    page.evaluate("window.__first = window.__loopwise.plots()[0]")
    page.focus(".lw-chart[data-title='loss'] .uplot")
    page.keyboard.press("+")
    window = page.evaluate("() => { const u = window.__loopwise.plots()[0];"
                           " return [u.scales.x.min, u.scales.x.max]; }")
    wait_until(lambda: page.evaluate(last) >= first + 5, timeout=15, page=page,
               what="new points on the run page")
    assert page.evaluate("() => { const u = window.__loopwise.plots()[0];"
                         " return [u.scales.x.min, u.scales.x.max]; }") == window
    assert page.text_content(".lw-status") == "running"
    assert page.evaluate("window.__first === window.__loopwise.plots()[0]")  # updated, not rebuilt
    page.screenshot(path=str(artifacts / "runpage-live.png"))
    assert page.errors == []


def test_the_run_list_is_updated_in_place(chromium: Any, server: Server) -> None:
    page = _open(chromium, server.url + "/?token=tok-for-the-runpage&run=alpha&metric=loss")
    page.wait_for_selector("#lw-runs tr[data-run='live']")
    page.focus("#lw-runs tr[data-run='live'] input")
    page.evaluate("document.activeElement.__mine = true")
    steps = int(page.text_content("#lw-runs tr[data-run='live'] .lw-steps").replace(",", ""))
    wait_until(lambda: int(page.text_content("#lw-runs tr[data-run='live'] .lw-steps")
                           .replace(",", "")) >= steps + 5,
               timeout=15, page=page, what="the live run's steps to grow")
    assert page.evaluate("document.activeElement.__mine === true")  # the same, focused box
    page.keyboard.press("Space")  # and it still works from the keyboard
    wait_until(lambda: "live" in [th.text_content() for th in
                                  page.query_selector_all("#lw-chart .u-legend th")],
               page=page, what="the live run overlaid")


def test_smoothing_keeps_the_zoom_and_asks_nothing(chromium: Any, server: Server) -> None:
    page = _open(chromium, server.url + "/?token=tok-for-the-runpage&run=alpha&metric=loss")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/series/" in r.url else None)
    wait_until(lambda: page.query_selector("#lw-chart .u-over"), page=page, what="the chart")
    box = page.query_selector("#lw-chart .u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.4, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
    page.mouse.up()
    scale = "() => [window.__loopwise.plot.scales.x.min, window.__loopwise.plot.scales.x.max]"
    wait_until(lambda: page.evaluate(scale)[0] > 100, page=page, what="the zoomed window")
    zoomed, before = page.evaluate(scale), len(asked)
    page.fill("#lw-smoothing", "0.9")
    page.dispatch_event("#lw-smoothing", "input")
    assert [th.text_content() for th in page.query_selector_all("#lw-chart .u-legend th")] == [
        "step", "alpha (raw)", "alpha"]
    assert page.evaluate(scale) == zoomed
    page.wait_for_timeout(300)
    assert len(asked) == before  # drawn from what the page has


def test_an_empty_or_missing_root_says_how_to_start(chromium: Any, tmp_path: Path,
                                                     artifacts: Path) -> None:
    root = tmp_path / "not-yet"
    server = Server(root)
    try:
        page = _open(chromium, server.url + "/")
        page.wait_for_selector("#lw-start")
        assert page.text_content("#lw-start p").startswith(f"Waiting for {root}")
        assert "TrainingMonitor(loader, root=" in page.text_content("#lw-start pre")
        page.screenshot(path=str(artifacts / "dashboard-empty.png"))
        root.mkdir()
        wait_until(lambda: page.text_content("#lw-start p").startswith(f"No runs in {root}"),
                   page=page, what="the empty root")
        with Run.create(root, "first") as run:
            run.log_scalars({"loss": 1.0}, step=1)
        page.wait_for_selector("#lw-runs tr[data-run='first']", timeout=15000)
        wait_until(lambda: page.query_selector("#lw-start") is None, page=page,
                   what="the hint gone")
        assert page.errors == []
    finally:
        server.stop()


def test_a_400px_screen_stacks_the_run_list_above_the_chart(chromium: Any, server: Server,
                                                            artifacts: Path) -> None:
    page = _open(chromium, server.url + "/?token=tok-for-the-runpage&run=alpha&metric=loss",
                 viewport={"width": 400, "height": 800})
    wait_until(lambda: page.query_selector("#lw-chart canvas"), page=page, what="the chart")
    runs = page.query_selector(".lw-side").bounding_box()
    chart = page.query_selector("#lw-chart").bounding_box()
    assert runs["width"] > 350 and chart["y"] > runs["y"] + runs["height"] - 1  # stacked
    assert chart["x"] + chart["width"] <= 400
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    page.screenshot(path=str(artifacts / "dashboard-400px.png"), full_page=True)


def test_a_long_metric_name_stays_in_its_menu_and_chart(chromium: Any, server: Server) -> None:
    from urllib.parse import quote

    page = _open(chromium, server.url + "/?token=tok-for-the-runpage&run=gamma&metric="
                 + quote(LONG, safe=""))
    wait_until(lambda: page.query_selector("#lw-chart .u-title") and
               page.text_content("#lw-chart .u-title") == LONG, page=page, what="the chart")
    menu = page.query_selector("#lw-metric").bounding_box()
    chart = page.query_selector("#lw-chart").bounding_box()
    assert menu["x"] + menu["width"] <= chart["x"] + chart["width"]
    assert menu["width"] <= 24 * 16 + 1  # cut at 24em
    title = page.query_selector("#lw-chart .u-title")
    assert title.get_attribute("title") == LONG
    assert title.evaluate("e => e.getBoundingClientRect().right") <= chart["x"] + chart["width"]
