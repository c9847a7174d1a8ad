"""Distributions, images and text in the report and the dashboard: the payload they draw from,
then what a person sees in headless Chromium (tick text, the bands, the image behind the step
slider and its pixels, the text entries). Screenshots are kept in the artifacts folder."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _view_kit import HOSTILE, INK, wait_until

from loopwise.record import Run, RunReader
from loopwise.view.media_payload import evenly, media_payload
from loopwise.view.report import write_report

COLORS = {1: (220, 30, 30), 2: (30, 160, 40), 3: (30, 60, 220)}


def media_run(root: Path, name: str = "media") -> Path:
    """Weights whose spread grows over 20 steps, a 3-step image strip (red, green, blue) and
    two text entries (one hostile)."""
    rng = np.random.default_rng(0)
    with Run.create(root, name) as run:
        for step in range(1, 21):
            run.log_histogram("weights/fc1", rng.normal(0.0, step / 10, 5000), step=step)
        for step, rgb in COLORS.items():
            run.log_image("predictions", np.full((40, 60, 3), rgb, np.uint8), step=step * 10)
        run.log_text("samples", "input 3 -> predicted 3", step=10)
        run.log_text("samples", HOSTILE, step=20)
    return root / name


def test_the_payload_has_quantile_bands_a_heatmap_images_and_texts(tmp_path: Path) -> None:
    media = media_payload(RunReader(media_run(tmp_path)))
    view = media["histograms"]["weights/fc1"]
    assert view["steps"] == list(range(1, 21)) and view["total"] == 20
    first, last = view["quantiles"][0], view["quantiles"][-1]
    assert first[4] == pytest.approx(0.0, abs=0.01) and last[4] == pytest.approx(0.0, abs=0.1)
    assert last[7] - last[1] == pytest.approx(2 * 1.5 * 2.0, rel=0.1)  # the 7-93 % band: +-1.5 sd
    assert last == sorted(last)
    assert len(view["heat"]["cells"]) == 20 and max(view["heat"]["cells"][-1]) == 1.0
    strip = media["images"]["predictions"]
    assert [i["step"] for i in strip["items"]] == [10, 20, 30] and strip["omitted"] == 0
    assert strip["items"][0]["src"].startswith("data:image/png;base64,")
    assert [t["text"] for t in media["texts"]["samples"]] == ["input 3 -> predicted 3", HOSTILE]
    tight = media_payload(RunReader(tmp_path / "media"), max_per_name=2, embed_mib=0.0001)
    assert tight["images"]["predictions"]["omitted"] == 3  # 1 thinned out, 2 over the budget
    assert evenly(list(range(10)), 3) == [0, 4, 9]
    with pytest.raises(ValueError, match="max_per_name must be an int >= 1, got 0"):
        media_payload(RunReader(tmp_path / "media"), max_per_name=0)


def _pixel(page: Any, selector: str) -> list[int]:
    """The colour at the middle of an <img> as drawn (read back through a canvas)."""
    return page.eval_on_selector(selector, """img => {
        const c = document.createElement('canvas'); c.width = img.naturalWidth;
        c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        return Array.from(g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.slice(0, 3)); }""")


def _check_views(page: Any) -> None:
    card = "[data-histogram='weights/fc1']"
    page.wait_for_selector(card + " svg")
    assert page.text_content(card + " h3") == "weights/fc1"
    yticks = [t.text_content() for t in page.query_selector_all(card + " .lw-dist-ytick")]
    xticks = [t.text_content() for t in page.query_selector_all(card + " .lw-dist-xtick")]
    assert "0" in yticks and any(t.startswith("-") for t in yticks), yticks
    assert xticks == ["5", "10", "15", "20"], xticks  # steps 1..20
    assert len(page.query_selector_all(card + " .lw-dist-band")) == 4
    assert "bands: min-max, 7-93 %" in page.text_content(card + " .lw-dist-legend")
    assert page.query_selector(card + " canvas").evaluate(INK) > 1000  # the heatmap
    strip = "[data-image='predictions']"
    wait_until(lambda: page.eval_on_selector(strip + " img", "i => i.complete && i.naturalWidth")
               == 60, what="the last image loaded", page=page)
    assert page.text_content(strip + " .lw-image-step") == "step 30 (3 of 3)"
    assert _pixel(page, strip + " img") == list(COLORS[3])
    page.fill(strip + " input[type=range]", "0")
    assert page.text_content(strip + " .lw-image-step") == "step 10 (1 of 3)"
    wait_until(lambda: page.eval_on_selector(strip + " img", "i => i.complete && i.naturalWidth")
               == 60, what="the first image loaded", page=page)
    assert _pixel(page, strip + " img") == list(COLORS[1])
    texts = [t.text_content() for t in page.query_selector_all("[data-text='samples'] .lw-text")]
    assert texts == [HOSTILE, "input 3 -> predicted 3"]  # newest first, as text


def test_the_report_shows_distributions_images_and_text(tmp_path: Path, browser: Any,
                                                         artifacts: Path) -> None:
    report = write_report(media_run(tmp_path / "runs"))
    assert "http://" not in report.read_text().split("<script")[0]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: errors.append("dialog: " + d.message))
    page.goto(report.as_uri())
    _check_views(page)
    headings = [h.text_content() for h in page.query_selector_all("#lw-app > h2, #lw-media > h2")]
    assert headings.index("Distributions") < headings.index("Events")
    assert headings.index("Metrics") < headings.index("Distributions")
    page.query_selector("#lw-media").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "report-media.png"), full_page=True)
    assert errors == []


def test_the_dashboard_run_page_shows_the_run_s_media(tmp_path: Path, browser: Any,
                                                       server_factory: Any,
                                                       artifacts: Path) -> None:
    pytest.importorskip("starlette")
    root = tmp_path / "runs"
    media_run(root)
    server = server_factory(root, token="secret-token-1")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/?view=run&run=media&token=secret-token-1")  # the run's page
    _check_views(page)
    page.query_selector("#lw-media").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "dashboard-media.png"), full_page=True)
    assert errors == []
    media = json.loads(urllib.request.urlopen(urllib.request.Request(
        server.url + "/api/runs/media/media",
        headers={"Authorization": "Bearer secret-token-1"})).read())
    src = media["images"]["predictions"]["items"][0]["src"]
    assert src.startswith("/api/runs/media/images/") and src.endswith(".png")
    for bad, code in (("nothex.png", 400), ("0" * 64 + ".png", 404)):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(
                f"{server.url}/api/runs/media/images/{bad}",
                headers={"Authorization": "Bearer secret-token-1"}))
        assert err.value.code == code


def test_a_damaged_image_is_named_and_the_others_still_shown(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loopwise.cli import main
    from loopwise.view.dashboard.data import NotFound, RunsRoot

    run = media_run(tmp_path)
    green = RunReader(run).images("predictions")[1]
    green.path.write_bytes(green.path.read_bytes()[:-20] + bytes(20))  # changed on disk
    part = "image 'predictions' at step 20"
    report = media_payload(RunReader(run))  # the report: each image checked as embedded
    strip = report["images"]["predictions"]
    assert [i["step"] for i in strip["items"]] == [10, 30] and strip["omitted"] == 1
    assert report["damaged"] == [part]
    data = RunsRoot(tmp_path)  # the dashboard: named in its media view, not served
    media = data.media("media")
    assert [i["step"] for i in media["images"]["predictions"]["items"]] == [10, 30]
    assert media["damaged"] == [part] and data.media("media")["damaged"] == [part]
    with pytest.raises(NotFound, match=f"{part} failed its checksum"):
        data.image("media", f"{green.digest}.png")
    assert data.image("media", media["images"]["predictions"]["items"][0]["src"].rsplit(
        "/", 1)[1]).startswith(b"\x89PNG")
    assert any(part in e["message"] for e in data.events("media")
               if e["kind"] == "record_damaged")
    assert main(["doctor", "media", "--root", str(tmp_path)]) == 1  # doctor says it too
    assert (f"  record: media/images/{green.digest}.png is corrupt (run 'media': {part} failed "
            "its checksum)") in capsys.readouterr().out
