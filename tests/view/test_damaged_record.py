"""Every view of a run whose store is damaged says which part and still shows the others:
``show``, ``doctor``, ``report``, ``export`` and the dashboard's API; a truncated store or a
bad header is one clear line, never a traceback."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from loopwise.cli import main
from loopwise.record import Run, RunReader
from loopwise.record.intact import intact

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient

from loopwise.view.dashboard.app import create_app


def _damaged(root: Path) -> Path:
    with Run.create(root, "r", config={"lr": 0.1}) as run:
        for step in range(1, 201):
            run.log_scalars({"loss": 1.0 / step, "acc": step / 200}, step=step)
        run.log_event("note", "hello")
    store = root / "r" / "store.sqlite"
    data = bytearray(store.read_bytes())
    data[data.find(struct.pack("<d", 1.0 / 7)) + 2] ^= 0x01
    store.write_bytes(bytes(data))
    return store


def _said(store: Path) -> str:
    return f"{store} is corrupt (run 'r': series 'loss' failed its checksum)"


def test_show_doctor_report_and_export_name_the_damaged_series_and_show_the_others(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _damaged(tmp_path / "runs")
    root = ["--root", str(tmp_path / "runs")]
    assert main(["show", "r", *root]) == 0
    out = capsys.readouterr().out
    assert f"DAMAGED  {_said(store)}" in out and "acc                      1  (200 points)" in out
    assert main(["doctor", "r", *root]) == 1
    out = capsys.readouterr().out
    assert f"  record: {_said(store)}" in out and out.endswith("verdict: needs attention\n")
    report = tmp_path / "r.html"
    assert main(["report", "r", "-o", str(report), *root]) == 0
    assert _said(store) in capsys.readouterr().err
    page = report.read_text()
    payload = json.loads(page.split('id="lw-data">')[1].split("</script>")[0])
    assert set(payload["series"]) == {"acc"} and payload["damaged"][0].startswith(_said(store))
    assert any(e["kind"] == "record_damaged" and e["level"] == "error"
               for e in payload["events"])
    out_csv = tmp_path / "r.csv"
    assert main(["export", "r", str(out_csv), *root]) == 0
    assert f"loopwise export: left out: {_said(store)}" in capsys.readouterr().err
    with out_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["step", "wall_time", "acc"] and len(rows) == 200


def test_the_dashboard_names_the_damaged_series_and_serves_the_others(tmp_path: Path) -> None:
    store = _damaged(tmp_path / "runs")
    client = TestClient(create_app(tmp_path / "runs"), base_url="http://127.0.0.1:8765")
    run = client.get("/api/runs/r").json()
    assert run["keys"] == ["acc"] and run["damaged"][0].startswith(_said(store))
    assert client.get("/api/runs/r/series/acc").json()["points"] == 200
    answer = client.get("/api/runs/r/series/loss")
    assert answer.status_code == 400 and answer.json()["error"].startswith(_said(store))
    events = client.get("/api/runs/r/events").json()
    assert [e["kind"] for e in events] == ["note", "record_damaged"]


@pytest.mark.parametrize("damage", ["truncated", "header"])
def test_a_truncated_store_or_a_bad_header_is_one_clear_line(
        tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = _damaged(tmp_path / "runs")
    if damage == "truncated":
        with store.open("r+b") as fh:
            fh.truncate(3000)
        reason = "database disk image is malformed"
    else:
        with store.open("r+b") as fh:
            fh.write(b"not a sqlite db")
        reason = "file is not a database"
    for verb in ("report", "show", "doctor", "export"):
        assert main([verb, "r", "--root", str(tmp_path / "runs")]) == 2, verb
        err = capsys.readouterr().err
        assert err.startswith(f"loopwise {verb}: error: {store} is corrupt (SQLite: {reason})")
        assert "Traceback" not in err


def test_intact_leaves_out_damaged_parts_and_an_intact_run_has_none(tmp_path: Path) -> None:
    store = _damaged(tmp_path / "runs")
    reader = intact(RunReader(store.parent))
    assert reader.keys() == ["acc"] and str(reader.damage[0]).startswith(
        _said(store))
    assert len(reader.events()) == 1
    with Run.create(tmp_path / "runs", "ok") as run:
        run.log_scalar("loss", 1.0, step=1)
    assert intact(RunReader(tmp_path / "runs" / "ok")).damage == []


def test_the_run_table_leaves_out_the_damaged_series_and_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _damaged(tmp_path / "runs")
    with Run.create(tmp_path / "runs", "ok") as run:
        run.log_scalars({"loss": 0.5, "acc": 0.9}, step=1)
    client = TestClient(create_app(tmp_path / "runs"), base_url="http://127.0.0.1:8765")
    rows = {r["name"]: r for r in client.get("/api/table").json()["rows"]}
    assert rows["r"]["final"] == {"acc": 1.0} and rows["r"]["best"] == {"acc": 1.0}
    assert len(rows["r"]["damaged"]) == 1 and rows["r"]["damaged"][0].startswith(_said(store))
    assert rows["ok"]["final"] == {"loss": 0.5, "acc": 0.9} and rows["ok"]["damaged"] == []
    assert main(["runs", str(tmp_path / "runs"), "--columns", "name,loss,acc"]) == 0
    out = capsys.readouterr().out
    assert f"r  damaged  {_said(store)}" in out
    table = [line.split() for line in out.splitlines()]
    assert ["r", "-", "1"] in table and ["ok", "0.5", "0.9"] in table


def test_the_dashboard_and_the_report_show_a_damaged_series_where_a_person_looks(
        browser: Any, server_factory: Any, artifacts: Path) -> None:
    root = Path(artifacts) / "runs"
    store = _damaged(root)
    with Run.create(root, "ok") as run:
        run.log_scalars({"loss": 0.5, "acc": 0.9}, step=1)
    server = server_factory(root)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")  # the home page: a marker on the damaged run's row
    page.wait_for_selector("#lw-runs-home tr.lw-row[data-run='r'] .lw-damaged-mark")
    mark = page.query_selector("#lw-runs-home tr.lw-row[data-run='r'] .lw-damaged-mark")
    assert mark.is_visible() and mark.text_content() == "damaged"
    assert _said(store) in mark.get_attribute("title")
    assert page.query_selector("#lw-runs-home tr.lw-row[data-run='ok'] .lw-damaged-mark") is None
    side = page.wait_for_selector("#lw-runs tr[data-run='r'] .lw-damaged-mark")  # the run list
    assert side.is_visible() and _said(store) in side.get_attribute("title")
    assert page.query_selector("#lw-runs tr[data-run='ok'] .lw-damaged-mark") is None
    page.screenshot(path=str(artifacts / "damaged-home.png"))
    page.goto(server.url + "/?view=run&run=r")  # the run page: a banner above the charts
    page.wait_for_selector(".lw-chart[data-title='acc'] canvas")
    banner = page.query_selector("#lw-damaged")
    assert banner.is_visible() and banner.get_attribute("role") == "alert"
    assert banner.text_content().startswith(
        "Damaged record: series 'loss' fails its checksum and is not shown; the rest of the run "
        f"is.{_said(store)}")
    assert banner.bounding_box()["y"] < page.query_selector(".lw-metrics").bounding_box()["y"]
    assert page.query_selector(".lw-chart[data-title='loss']") is None
    page.screenshot(path=str(artifacts / "damaged-runpage.png"))
    page.goto(server.url + "/?view=run&run=ok")  # an intact run: no banner
    page.wait_for_selector(".lw-chart[data-title='loss'] canvas")
    assert not page.query_selector("#lw-damaged").is_visible()
    report = Path(artifacts) / "r.html"  # the HTML report says it the same way
    assert main(["report", "r", "-o", str(report), "--root", str(root)]) == 0
    page.goto(report.as_uri())
    page.wait_for_selector(".lw-chart canvas")
    assert _said(store) in page.text_content("#lw-damaged")
    assert page.is_visible("#lw-damaged")
    page.screenshot(path=str(artifacts / "damaged-report.png"))
    assert errors == []
