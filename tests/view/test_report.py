"""The HTML report: self-contained, escaped, spikes kept; opened offline in headless Chromium."""

from __future__ import annotations

import json
import re
from array import array
from pathlib import Path
from typing import Any

import pytest
from _view_kit import HOSTILE, INK

from loopwise.record import Run, RunReader
from loopwise.view.report import render_report, script_json, write_report


def test_script_json_cannot_close_the_script_element() -> None:
    text = script_json({"k": "</script><script>alert(1)</script>", "a": "&\u2028"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"k": "</script><script>alert(1)</script>", "a": "&\u2028"}


def test_report_is_self_contained_and_escapes_names(runs_root: Path) -> None:
    html = render_report(RunReader(runs_root / "beta"))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "default-src 'none'" in html  # the page itself forbids any request
    assert HOSTILE not in html  # only as \u003c...\u003e inside the JSON
    assert "uPlot" in html and "lw-data" in html


def test_a_spike_survives_downsampling_into_the_report(tmp_path: Path) -> None:
    n = 200_000
    values = array("d", [1.0] * n)
    values[123_457] = 50.0
    with Run.create(tmp_path / "runs", "long") as run:
        run.log_columns({"loss": (array("q", range(1, n + 1)), array("d", range(n)), values)})
    out = write_report(tmp_path / "runs" / "long")
    assert out == tmp_path / "runs" / "long" / "report.html"
    data = _payload(out.read_text())
    loss = data["series"]["loss"]
    assert loss["points"] <= 4000 and loss["total"] == n
    assert max(loss["values"]) == 50.0 and 123_458 in loss["steps"]


def _payload(html: str) -> Any:
    found = re.search(r'<script type="application/json" id="lw-data">(.*?)</script>', html, re.S)
    assert found is not None
    return json.loads(found.group(1))


def test_write_report_validates(tmp_path: Path, runs_root: Path) -> None:
    with pytest.raises(TypeError, match="run_path must be a run folder path, got int"):
        write_report(3)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="folder .*missing does not exist"):
        write_report(runs_root / "beta", tmp_path / "missing" / "r.html")
    with pytest.raises(FileNotFoundError, match="is not a loopwise run folder"):
        write_report(tmp_path)


def test_report_opens_offline_and_draws(runs_root: Path, browser: Any, artifacts: Path) -> None:
    report = write_report(runs_root / "beta")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def block(route: Any) -> None:
        if not route.request.url.startswith("file://"):
            requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", block)
    page.on("dialog", lambda d: errors.append("dialog: " + d.message))
    page.goto(report.as_uri())
    page.wait_for_selector(".lw-chart canvas")
    canvases = page.query_selector_all(".lw-chart canvas")
    assert len(canvases) >= 4  # loss, the hostile metric, accuracy, system charts
    assert all(c.evaluate(INK) > 500 for c in canvases)
    titles = [t.text_content() for t in page.query_selector_all(".u-title")]
    assert "loss" in titles and HOSTILE in titles  # as text: no image was made of it
    assert page.query_selector("img") is None
    legend = page.text_content(".lw-chart")
    assert "epoch/loss" in legend and "epoch/val_loss" in legend  # training and validation
    assert [r.text_content() for r in page.query_selector_all(".lw-table tr td:nth-child(3)")
            ][:4] == ["started", "checkpoint_saved", "checkpoint_saved", "checkpoint_saved"]
    assert "batch_size" in page.text_content("body")
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    page.select_option("#lw-axis", "epoch")
    assert page.text_content(".lw-chart .u-legend") .startswith("epoch")
    assert page.query_selector(".lw-chart canvas").evaluate(INK) > 500
    page.fill("#lw-smoothing", "0.9")
    page.dispatch_event("#lw-smoothing", "input")
    assert "loss (raw)" in page.text_content(".lw-chart .u-legend")
    page.select_option("#lw-axis", "time")
    assert page.text_content(".lw-chart .u-legend").startswith("wall time")
    assert requests == [] and errors == []


def test_shipped_front_end_files() -> None:
    from loopwise.view.static_files import STATIC_FILES, static_text

    for name in STATIC_FILES:
        assert static_text(name).strip(), name
    assert "MIT License" in static_text("uPlot.LICENSE.txt")
    from loopwise.view.static_files import SCRIPTS

    for name in SCRIPTS:  # no request to anywhere, no HTML parsed from data
        # the SVG namespace is a name (createElementNS), never fetched
        script = static_text(name).replace('"http://www.w3.org/2000/svg"', "SVG_NS")
        assert "http://" not in script and "https://" not in script, name
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script, name
        assert f'src="static/{name}"' in static_text("dashboard.html"), name
    with pytest.raises(KeyError, match="no static file 'x.js'"):
        static_text("x.js")


def test_empty_and_non_finite_runs(tmp_path: Path, browser: Any) -> None:
    with Run.create(tmp_path / "runs", "empty"):
        pass
    with Run.create(tmp_path / "runs", "nan") as run:
        run.log_scalars({"loss": float("nan")}, step=1)
        run.log_scalars({"loss": float("inf")}, step=2)
        run.log_scalars({"loss": 1.0}, step=3)
    data = _payload(render_report(RunReader(tmp_path / "runs" / "nan")))
    assert data["series"]["loss"]["values"] == [None, None, 1.0]
    assert (data["series"]["loss"]["nonfinite"], data["series"]["loss"]["first_nonfinite"]) == (2, 1)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(write_report(tmp_path / "runs" / "empty").as_uri())
    page.wait_for_selector(".lw-empty")
    assert [p.text_content() for p in page.query_selector_all(".lw-empty")] == [
        "no metrics recorded", "no system samples", "no config", "no epochs recorded"]
    page.goto(write_report(tmp_path / "runs" / "nan").as_uri())
    assert page.text_content(".lw-warn") == ("loss: 2 non-finite value(s) (NaN or infinity) "
                                             "drawn as gaps (\u00d7), the first at step 1")
    assert errors == []


def test_many_events_keep_every_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loopwise.view import payload

    monkeypatch.setattr(payload, "MAX_EVENTS", 10)
    with Run.create(tmp_path / "runs", "chatty") as run:
        run.log_event("health.spike", "early warning", level="warning")
        for i in range(30):
            run.log_event("checkpoint_saved", f"checkpoint {i}")
    events = payload.run_payload(RunReader(tmp_path / "runs" / "chatty"))["events"]
    kinds = [e["message"] for e in events if e["kind"] not in ("started", "finished")]
    assert kinds[0] == "early warning" and len(kinds) == 10 and kinds[-1] == "checkpoint 29"
