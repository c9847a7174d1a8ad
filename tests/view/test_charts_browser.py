"""The charts read right, in headless Chromium: tick and legend text (what uPlot drew on its
axes and writes in its DOM legend), NaN gaps and their markers, smoothing only on per-step
series, one labelled time zone, log scale, ignore outliers, event marks, system bands, long
names, a 400 px screen, dark mode and the keyboard. One browser for the module; screenshots in
the artifacts folder."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _view_kit import CHROMIUM, CHROMIUM_ARGS, _need_chromium, wait_until

from loopwise.record import Run
from loopwise.view.report import write_report

T0 = 1_700_000_000.0
LONG = "encoder/layers/attention/a_metric_name_long_enough_to_spill_out_of_its_chart_box_0123"


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
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose values are hard to print: a cosine lr from 3e-4, an lr near 1e-3, values near
    654321, a million steps, NaN and infinity, a spike, events of every marked kind, system
    samples with .min/.max, a long name and a long warning."""
    root = tmp_path_factory.mktemp("charts") / "runs"
    n, stride = 400, 2500  # steps 2500 .. 1,000,000
    with Run.create(root, "numbers", config={"seed": 654321, "lr": 3e-4}) as run:
        for i in range(1, n + 1):
            step = i * stride
            loss = 2.0 * math.exp(-i / 80) + 0.1
            if i == 200:
                loss = 44.0
            if i in (120, 121):
                loss = float("nan") if i == 120 else float("inf")
            run.log_scalars({"warmup_lr": 1.5e-4 * (1 + math.cos(math.pi * (i - 1) / n)),
                             "lr": 1.5e-4 * (1 + math.cos(math.pi * (i - 1) / n)),
                             "lr_near_1e-3": 0.001 + 0.0015 * i / n, "big": 654321.0 + i * 10,
                             "loss": loss, "val_loss": loss * 1.1, LONG: i / n},
                            step=step, wall_time=T0 + i)
            if i % 50 == 0:
                epoch = i // 50
                run.log_epoch(epoch, {"lr": 0.0105 - epoch * 0.001, "loss": loss,
                                      "val_loss": loss * 1.1}, step=step)
                run.log_system({"cpu_pct": 40.0 + epoch, "cpu_pct.min": 30.0 + epoch,
                                "cpu_pct.max": 60.0 + epoch, "proc_rss_mib": 500.0 + epoch,
                                "proc_rss_mib.min": 490.0, "proc_rss_mib.max": 520.0 + epoch},
                               wall_time=T0 + i)
                run.log_event("checkpoint_saved", f"checkpoint of epoch {epoch}",
                              data={"step": step})
        run.log_event("health.loss_spike", "loss jumped to 44 at step 500,000", level="warning",
                      data={"step": 200 * stride})
        run.log_event("best_model", "new best val_loss at epoch 7", data={"step": 350 * stride})
        run.log_event("resumed", "run resumed (it was interrupted)", data={"step": 250 * stride})
    return write_report(root / "numbers")


def _page(chromium: Any, report: Path, *, width: int = 1280, **context: Any) -> Any:
    ctx = chromium.new_context(viewport={"width": width, "height": 900}, **context)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.as_uri())
    page.wait_for_selector(".lw-chart canvas")
    page.errors = errors
    return page


def _card(page: Any, title: str) -> Any:
    return page.query_selector(f".lw-chart[data-title='{title}']")


def _plot(page: Any, title: str) -> str:
    """A JS expression for the uPlot of the chart titled ``title``."""
    return (f"window.__loopwise.plots().find(u => u.root.querySelector('.u-title')"
            f".textContent === {title!r})")


def _ticks(page: Any, title: str, axis: int = 1) -> list[tuple[float, str]]:
    """(value, label) of each tick uPlot drew on axis ``axis`` of chart ``title``."""
    return [(s, v) for s, v in page.evaluate(
        f"() => {{ const a = {_plot(page, title)}.axes[{axis}]; "
        "return a._splits.map((s, i) => [s, a._values[i]]); }")]


def _hover(page: Any, title: str, x: float) -> dict[str, str]:
    """The chart's DOM legend with the cursor at data x: {label: value shown}."""
    page.evaluate(f"() => {{ const u = {_plot(page, title)}; "
                  f"u.setCursor({{left: u.valToPos({x}, 'x'), top: 10}}); }}")
    card = _card(page, title)
    rows = card.query_selector_all(".u-legend tr")
    return {r.query_selector("th").text_content(): r.query_selector("td").text_content()
            for r in rows if r.query_selector("td")}


def _number(label: str) -> float:
    return float(label.replace(",", ""))


def test_ticks_legend_and_tables_read_the_values(chromium: Any, report: Path,
                                                 artifacts: Path) -> None:
    page = _page(chromium, report)
    for title in ("warmup_lr", "lr", "lr_near_1e-3", "big"):
        ticks = _ticks(page, title)
        labels = [label for _, label in ticks]
        assert len(set(labels)) == len(labels) >= 3, (title, labels)
        for value, label in ticks:  # every label reads the value it stands at
            assert math.isclose(_number(label), value, rel_tol=1e-6, abs_tol=1e-12), (title, ticks)
    assert "e+" not in " ".join(label for _, label in _ticks(page, "big"))
    assert _ticks(page, "big", 0)[-1][1] == "1,000,000"  # the step axis: grouped, exact
    assert _hover(page, "warmup_lr", 2500)["warmup_lr"] == "3e-4"
    assert "0" not in [label for _, label in _ticks(page, "warmup_lr")][1:]
    assert _hover(page, "lr_near_1e-3", 2500)["lr_near_1e-3"] == "0.0010038"
    assert _hover(page, "big", 1_000_000) == {"step": "1,000,000", "big": "658,321"}
    cells = [td.text_content() for td in page.query_selector_all(".lw-table td")]
    assert "654,321" in cells and "3e-4" in cells  # the config table
    assert "steps 1,000,000" in page.text_content(".lw-sub")
    page.screenshot(path=str(artifacts / "charts-numbers.png"), full_page=True)
    assert page.errors == []


def test_nan_and_inf_are_gaps_with_markers(chromium: Any, report: Path, artifacts: Path) -> None:
    page = _page(chromium, report)
    at = {s: page.evaluate(f"() => {_plot(page, 'loss')}.valToPos({s}, 'x', true)")
          for s in (300_000, 301_250, 302_500)}
    # a column of the canvas half way between the NaN and the inf step: no line crosses it
    ink = page.evaluate(f"""() => {{ const u = {_plot(page, 'loss')}, c = u.ctx.canvas;
        const x = Math.round({at[301_250]}), top = u.bbox.top, h = u.bbox.height - 12 * devicePixelRatio;
        const d = u.ctx.getImageData(x, top, 1, h).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i+3] > 0 && d[i+2] > 150 && d[i] < 100) n++;
        return n; }}""")
    assert ink == 0  # no blue loss line bridges the gap
    marks = _card(page, "loss").query_selector_all(".lw-nan")
    titles = sorted(m.get_attribute("title") for m in marks)
    assert titles == ["loss: NaN or infinity at step 300,000", "loss: NaN or infinity at step 302,500",
                      "val_loss: NaN or infinity at step 300,000",
                      "val_loss: NaN or infinity at step 302,500"]
    assert _hover(page, "loss", 300_000)["loss"] == "NaN/inf"
    _card(page, "loss").screenshot(path=str(artifacts / "charts-nan.png"))


def test_smoothing_only_per_step_series_and_the_raw_line_stays(chromium: Any,
                                                               report: Path) -> None:
    page = _page(chromium, report)
    page.fill("#lw-smoothing", "0.8")
    page.dispatch_event("#lw-smoothing", "input")
    legend = _hover(page, "lr", 1_000_000)
    assert set(legend) == {"step", "lr (raw)", "lr", "epoch/lr"}
    assert legend["epoch/lr"] == "0.0025"  # the epoch series as logged, not smoothed
    assert legend["lr (raw)"] == "4.6264e-9"  # 1.5e-4 * (1 + cos(399 pi / 400))
    raw_width = page.evaluate(f"() => {_plot(page, 'lr')}.series[1].width")
    assert raw_width == 1


def test_one_time_zone_labelled(chromium: Any, report: Path) -> None:
    from datetime import datetime, timezone

    page = _page(chromium, report, timezone_id="America/New_York")
    start = page.evaluate("JSON.parse(document.getElementById('lw-data').textContent)"
                          ".info.start_time")
    utc = datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    assert f"started {utc} UTC" in page.text_content(".lw-sub")
    heads = [th.text_content() for th in page.query_selector_all(".lw-events th")]
    assert heads[0] == "time (UTC)"
    assert page.query_selector(".lw-events td").text_content() == utc  # the "started" event
    page.select_option("#lw-axis", "time")
    assert page.text_content(".lw-chart .u-legend th") == "wall time (UTC)"
    ticks = [label for _, label in _ticks(page, "big", 0)]
    assert ticks[0] == "22:14\n2023-11-14"  # UTC and 24-hour (17:14 in New York)


def test_log_scale_and_ignore_outliers_per_chart(chromium: Any, report: Path,
                                                artifacts: Path) -> None:
    page = _page(chromium, report)
    top = f"() => {_plot(page, 'loss')}.scales.y.max"
    assert page.evaluate(top) > 44  # the spike sets the scale
    card = _card(page, "loss")
    card.query_selector(".lw-outliers input").check()
    assert page.evaluate(top) < 5  # the rest of the curve fills the chart
    card.query_selector(".lw-outliers input").uncheck()
    card.query_selector(".lw-log input").check()
    assert page.evaluate(f"() => {_plot(page, 'loss')}.scales.y.distr") == 3
    labels = [label for _, label in _ticks(page, "loss")]
    assert "0.1" in labels and "1" in labels and "10" in labels
    assert page.evaluate(f"() => {_plot(page, 'big')}.scales.y.distr") == 1  # only that chart
    card.screenshot(path=str(artifacts / "charts-log.png"))


def test_events_are_marked_on_the_charts(chromium: Any, report: Path) -> None:
    page = _page(chromium, report)
    marks = _card(page, "loss").query_selector_all(".lw-mark")
    kinds = sorted(m.get_attribute("class").split()[-1] for m in marks)
    assert kinds == ["lw-mark-best", "lw-mark-checkpoint"] + ["lw-mark-checkpoint"] * 7 + [
        "lw-mark-health", "lw-mark-resume"]
    health = _card(page, "loss").query_selector(".lw-mark-health")
    assert health.get_attribute("title") == ("health.loss_spike at step 500,000: loss jumped to "
                                              "44 at step 500,000")
    x = page.evaluate(f"() => {_plot(page, 'loss')}.valToPos(500000, 'x')")
    box = health.bounding_box()
    over = _card(page, "loss").query_selector(".u-over").bounding_box()
    assert abs(box["x"] + box["width"] / 2 - (over["x"] + x)) < 2  # at its step
    page.select_option("#lw-axis", "epoch")  # the same events, at their epochs
    best = _card(page, "loss").query_selector(".lw-mark-best")
    assert float(best.get_attribute("data-x")) == 7.0


def test_system_one_chart_per_quantity_with_its_band(chromium: Any, report: Path) -> None:
    page = _page(chromium, report)
    titles = [t.text_content() for t in page.query_selector_all(".lw-system .u-title")]
    assert titles == ["cpu_pct", "proc_rss_mib"]
    legend = [th.text_content() for th in page.query_selector_all(
        ".lw-system .lw-chart[data-title='cpu_pct'] .u-legend th")]
    assert legend == ["wall time (UTC)", "cpu_pct", "cpu_pct.min", "cpu_pct.max"]
    assert page.evaluate(f"() => {_plot(page, 'cpu_pct')}.bands.length") == 1


def test_long_names_and_words_stay_whole(chromium: Any, report: Path, artifacts: Path) -> None:
    page = _page(chromium, report, width=400)
    title = page.query_selector(f".lw-group[data-group='encoder'] .lw-chart[data-title='{LONG}']"
                                " .u-title")  # grouped under its prefix
    assert title.get_attribute("title") == LONG  # the whole name on hover
    assert title.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
    assert title.evaluate("e => e.scrollWidth > e.clientWidth")  # cut, with an ellipsis
    card = page.query_selector(f".lw-chart[data-title='{LONG}']").bounding_box()
    assert card["x"] + card["width"] <= 400
    assert page.evaluate("document.documentElement.scrollWidth") <= 400  # no sideways scroll
    cells = page.query_selector_all(".lw-events td:not(.lw-wrap)")
    assert "warning" in [c.text_content() for c in cells]
    for cell in cells:  # a word (a level, a kind, a time) is never cut across two lines
        lines = cell.evaluate("e => { const r = document.createRange(); r.selectNodeContents(e);"
                              " return new Set([...r.getClientRects()].map(x => x.top)).size; }")
        assert lines == 1, cell.text_content()
    page.screenshot(path=str(artifacts / "charts-400px.png"), full_page=True)


def test_dark_mode_follows_the_system(chromium: Any, report: Path, artifacts: Path) -> None:
    page = _page(chromium, report, color_scheme="dark")
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(22, 24, 28)"
    # the tick labels are light on the dark card: bright pixels left of the plot, none dark
    ticks = f"""() => {{ const u = {_plot(page, 'loss')};
        const d = u.ctx.getImageData(0, 0, u.bbox.left, u.ctx.canvas.height).data;
        let bright = 0, dark = 0; for (let i = 0; i < d.length; i += 4) if (d[i+3] > 200)
          {{ if (d[i] > 150) bright++; else if (d[i] < 45) dark++; }} return [bright, dark]; }}"""
    bright, dark = page.evaluate(ticks)
    assert bright > 50 and dark == 0  # light text (#c8c8c8), no dark (#222) text
    page.screenshot(path=str(artifacts / "charts-dark.png"))
    page.emulate_media(color_scheme="light")  # the system setting changes: charts follow
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(250, 250, 250)"
    wait_until(lambda: page.evaluate(ticks)[1] > 50, page=page, what="dark tick text again")


def test_keyboard_zoom_and_reset(chromium: Any, report: Path) -> None:
    page = _page(chromium, report)
    scale = f"() => {{ const u = {_plot(page, 'big')}; return [u.scales.x.min, u.scales.x.max]; }}"
    full = page.evaluate(scale)
    page.focus(".lw-chart[data-title='big'] .uplot")
    assert page.evaluate("document.activeElement.classList.contains('uplot')")
    page.keyboard.press("+")
    lo, hi = page.evaluate(scale)
    assert math.isclose(hi - lo, (full[1] - full[0]) / 2)
    page.keyboard.press("ArrowRight")
    assert page.evaluate(scale)[0] > lo
    page.fill("#lw-smoothing", "0.5")  # a redraw keeps the zoom
    page.dispatch_event("#lw-smoothing", "input")
    assert math.isclose(page.evaluate(scale)[1] - page.evaluate(scale)[0], hi - lo)
    page.focus(".lw-chart[data-title='big'] .uplot")
    page.keyboard.press("0")
    assert page.evaluate(scale) == full


def test_step_ticks_are_whole_steps(chromium: Any, tmp_path: Path) -> None:
    with Run.create(tmp_path / "runs", "short") as run:
        for step in range(1, 33):
            run.log_scalars({"loss": 1.0 / step}, step=step)
    page = _page(chromium, write_report(tmp_path / "runs" / "short"))
    labels = [label for _, label in _ticks(page, "loss", 0)]
    assert labels and all(label.isdigit() for label in labels), labels  # no "2.5" steps
