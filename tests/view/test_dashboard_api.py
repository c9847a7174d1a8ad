"""The dashboard's JSON API through Starlette's TestClient: data, windows, and the guards
(traversal, Host header, token, read-only, no CORS)."""

from __future__ import annotations

import json
import os
from array import array
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from _view_kit import HOSTILE

from loopwise.record import Run

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient

from loopwise.view.dashboard.app import create_app


def client(root: Path, **kw: Any) -> TestClient:
    return TestClient(create_app(root, **kw), base_url="http://127.0.0.1:8765")


def test_runs_run_and_series(runs_root: Path) -> None:
    c = client(runs_root)
    runs = c.get("/api/runs").json()
    assert sorted(r["name"] for r in runs) == ["alpha-1", "alpha-2", "beta"]
    assert all(r["status"] == "finished" and r["steps"] == 300 for r in runs)
    run = c.get("/api/runs/beta").json()
    assert run["keys"][:2] == ["loss", HOSTILE] and run["epoch_ends"] == [100, 200, 300]
    assert run["config"] == {"lr": 0.1, "batch_size": 64}
    s = c.get(f"/api/runs/beta/series/{quote(HOSTILE, safe='')}").json()
    assert s["key"] == HOSTILE and s["points"] == 300
    window = c.get("/api/runs/alpha-2/series/loss?start=101&end=200&points=20").json()
    assert window["window"] == 100 and window["points"] <= 20
    assert min(window["steps"]) >= 101 and max(window["steps"]) <= 200
    assert max(window["values"]) == 25.0  # the spike at step 150 survives
    assert c.get("/api/runs/alpha-2/series/epoch/val_loss").json()["epochs"] == [1.0, 2.0, 3.0]
    by_epoch = c.get("/api/runs/alpha-2/series/loss?x=epoch&start=1.5&end=2").json()  # inclusive
    assert by_epoch["steps"][0] == 150 and by_epoch["steps"][-1] == 200
    by_time = c.get("/api/runs/alpha-2/series/loss?x=time&start=1700000010&end=1700000019")
    assert by_time.json()["steps"] == list(range(10, 20))
    events = c.get("/api/runs/beta/events").json()
    assert [e["kind"] for e in events] == ["checkpoint_saved"] * 3
    system = c.get("/api/runs/beta/system").json()
    assert system["cpu_pct"]["values"] == [41.0, 42.0, 43.0]


def test_bad_parameters_are_400_with_a_message(runs_root: Path) -> None:
    c = client(runs_root)
    for query, message in (("points=1", "points must be an int from 2 to 20000 (points drawn per series), got 1"),
                           ("points=abc", "points must be an integer"),
                           ("x=wall", "x must be one of step, epoch, time"),
                           ("points=", "points must be an integer, got ''"),
                           ("points=5&points=6", "points given 2 times; give it once"),
                           ("x=", "x must be one of step, epoch, time; got ''"),
                           ("start=nan", "start must be a finite number")):
        r = c.get(f"/api/runs/beta/series/loss?{query}")
        assert r.status_code == 400 and message in r.json()["error"], query
    empty = c.get("/api/runs/beta/series/loss?start=5&end=1").json()  # an empty window
    assert empty["points"] == 0 and empty["values"] == [] and empty["total"] == 300
    r = c.get("/api/runs/beta/series/nope")
    assert r.status_code == 404 and r.json() == {"error": "run 'beta' has no series 'nope'"}
    assert c.get("/api/runs/gamma").status_code == 404


def test_paths_never_leave_the_root(runs_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    with Run.create(outside, "secret") as run:
        run.log_scalars({"loss": 1.0}, step=1)
    os.symlink(outside / "secret", runs_root / "linked")
    c = client(runs_root)
    for path in ("/api/runs/..", "/api/runs/%2e%2e", "/api/runs/..%2Foutside%2Fsecret",
                 "/api/runs/%2Fetc", "/api/runs/.hidden", "/api/runs/linked",
                 "/api/runs/linked/series/loss", "/api/runs/..%2F..%2Fetc/events"):
        r = c.get(path)
        assert r.status_code in (400, 404), path
        assert "secret" not in r.text or "outside the runs root" in r.text
    assert c.get("/api/runs/linked").json() == {"error": "run 'linked' is outside the runs root"}
    assert "linked" not in [r["name"] for r in c.get("/api/runs").json()]
    assert c.get("/static/..%2F..%2Frecord%2Frun.py").status_code == 404


def test_host_header_allow_list(runs_root: Path) -> None:
    c = client(runs_root, allow_hosts=["box.lan"])
    for host in ("127.0.0.1:8765", "localhost", "[::1]:9", "box.lan:80"):
        assert c.get("/api/runs", headers={"host": host}).status_code == 200, host
    r = c.get("/api/runs", headers={"host": "evil.example:8765"})
    assert r.status_code == 400 and "Host header not allowed" in r.json()["error"]


def test_token(runs_root: Path) -> None:
    c = client(runs_root, token="s3cret-token")
    assert c.get("/api/runs").status_code == 401
    assert c.get("/").status_code == 401
    assert c.get("/api/runs", headers={"authorization": "Bearer wrong-token"}).status_code == 401
    assert c.get("/api/runs", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
    assert c.get("/api/runs?token=s3cret-token").status_code == 200
    assert c.get("/static/loopwise.js").status_code == 200  # no data in the shipped files
    with pytest.raises(ValueError, match="token must be a printable string of at least 8"):
        create_app(runs_root, token="short")


def test_read_only_no_cors_and_security_headers(runs_root: Path) -> None:
    c = client(runs_root)
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        r = c.request(method, "/api/runs", headers={"origin": "http://evil.example"})
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    r = c.get("/api/runs", headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"
    page = c.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'src="static/uPlot.iife.min.js"' in page.text and "http" not in page.text


def test_openapi_schema_documents_the_api(runs_root: Path) -> None:
    schema = client(runs_root).get("/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {"/api/runs", "/api/runs/{run}", "/api/runs/{run}/events",
                                    "/api/runs/{run}/system", "/api/runs/{run}/series/{key}",
                                    "/api/root", "/api/runs/{run}/payload",
                                    "/api/runs/{run}/download/{key}",
                                    "/api/runs/{run}/report", "/api/table",
                                    "/api/runs/{run}/media", "/api/runs/{run}/images/{file}"}
    params = {p["name"] for p in schema["paths"]["/api/runs/{run}/series/{key}"]["get"][
        "parameters"]}
    assert params == {"run", "key", "start", "end", "points", "x"}


def test_a_million_points_window(tmp_path: Path) -> None:
    n = 1_000_000
    values = array("d", (float(i % 1000) / 1000 for i in range(n)))
    values[777_777] = -40.0
    with Run.create(tmp_path / "runs", "big") as run:
        run.log_columns({"loss": (array("q", range(1, n + 1)), array("d", range(n)), values)})
    c = client(tmp_path / "runs")
    full = c.get("/api/runs/big/series/loss?points=2000").json()
    assert full["total"] == n and full["points"] <= 2000 and min(full["values"]) == -40.0
    zoom = c.get("/api/runs/big/series/loss?start=700000&end=800000&points=2000").json()
    assert zoom["window"] == 100_001 and 777_778 in zoom["steps"]


def test_a_root_that_does_not_exist_yet_is_waited_for(tmp_path: Path) -> None:
    c = client(tmp_path / "later")
    assert c.get("/api/runs").json() == []
    assert c.get("/api/root").json() == {"path": str((tmp_path / "later").resolve()),
                                         "exists": False}
    with Run.create(tmp_path / "later", "first") as run:
        run.log_scalars({"loss": 1.0}, step=1)
    assert [r["name"] for r in c.get("/api/runs").json()] == ["first"]
    assert c.get("/api/root").json()["exists"] is True


def test_payload_download_and_report(runs_root: Path) -> None:
    c = client(runs_root)
    payload = c.get("/api/runs/alpha-2/payload?points=100").json()
    assert payload["series"]["loss"]["points"] <= 100 and payload["epoch_ends"] == [100, 200, 300]
    assert max(payload["series"]["loss"]["values"]) == 25.0
    best = payload["best"]
    assert (best["key"], best["epoch"], best["step"]) == ("epoch/val_loss", 3, 300)
    csv = c.get("/api/runs/alpha-2/download/loss")
    assert csv.headers["content-type"].startswith("text/csv")
    assert 'filename="alpha-2-loss.csv"' in csv.headers["content-disposition"]
    lines = csv.text.splitlines()
    assert lines[0] == "step,wall_time,value" and len(lines) == 301
    assert lines[150].startswith("150,1700000150.0,25.0")
    jsonl = c.get("/api/runs/alpha-2/download/epoch/val_loss?format=jsonl").text.splitlines()
    assert [json.loads(x)["step"] for x in jsonl] == [100, 200, 300]
    bad = c.get("/api/runs/alpha-2/download/loss?format=xml")
    assert bad.status_code == 400 and bad.json()["error"] == (
        "format must be one of csv, jsonl; got 'xml'")
    assert c.get("/api/runs/alpha-2/download/nope").status_code == 404
    report = c.get("/api/runs/beta/report")
    assert report.text.startswith("<!doctype html>")
    assert "script-src 'unsafe-inline'" in report.headers["content-security-policy"]


def test_create_app_validates(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a runs folder"):
        create_app(tmp_path / "file")
    with pytest.raises(ValueError, match="allow_hosts must be host names"):
        create_app(tmp_path, allow_hosts=[""])


def test_binding_another_host_warns() -> None:
    from loopwise.view.dashboard.serve import bind_warning, serve

    assert bind_warning("127.0.0.1", None) is None and bind_warning("localhost", None) is None
    assert bind_warning("0.0.0.0", None) == ("loopwise ui: warning: listening on 0.0.0.0 makes "
                                             "your runs readable from the network; set --token")
    assert bind_warning("192.168.1.5", "tok-tok-tok").endswith("from the network")
    with pytest.raises(ValueError, match=r"port must be an int from 0 to 65535 \(0: any free port\), got 70000"):
        serve(".", port=70000)


def test_names_the_file_system_refuses_are_404(runs_root: Path) -> None:
    c = client(runs_root)
    r = c.get("/api/runs/" + "x" * 5000)
    assert r.status_code == 404 and "File name too long" in r.json()["error"]
    assert c.get("/api/runs/a%00b").status_code == 400


def test_the_schema_pattern_matches_the_names_the_server_accepts(runs_root: Path) -> None:
    import re

    from loopwise.view.dashboard.data import BadRequest, NotFound, RunsRoot
    from loopwise.view.dashboard.openapi import RUN_NAME_PATTERN

    data = RunsRoot(runs_root)
    for name in ("beta", "b.e-t_a 1", "ü€", ".x", "..", "a/b", "a\\b", "a\0b", "/abs"):
        try:
            data.run_dir(name)
            accepted = True
        except NotFound:
            accepted = True
        except BadRequest:
            accepted = False
        assert accepted == bool(re.match(RUN_NAME_PATTERN, name)), name


def test_unknown_paths_are_json_404(runs_root: Path) -> None:
    c = client(runs_root)
    for path in ("/nope", "/api/runs/beta/series/a%0Ab", "/api/other"):
        r = c.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/json", path
        assert r.json() == {"error": "no such page or API path; see /openapi.json"}


def test_the_run_table_and_its_server_side_filter(runs_root: Path) -> None:
    c = client(runs_root)
    body = c.get("/api/table").json()
    rows = {r["name"]: r for r in body["rows"]}
    assert set(rows) == {"alpha-1", "alpha-2", "beta"} and body["matched"] is None
    assert rows["beta"]["config"] == {"lr": 0.1, "batch_size": 64}
    assert 0.19 < rows["alpha-2"]["best"]["loss"] < 0.22  # the minimum, not the spike
    assert body["config_keys"] == ["lr", "batch_size"]
    metrics = {m["key"]: m for m in body["metrics"]}
    assert metrics["epoch/val_loss"] == {"key": "epoch/val_loss", "mode": "min",
                                         "validation": True}
    assert metrics["epoch/accuracy"]["mode"] == "max"
    assert body["metrics"][0]["key"] == "epoch/val_loss"  # validation first
    got = c.get("/api/table", params={"where": "lr > 0.05 and batch_size == 32"}).json()
    assert got["matched"] == ["alpha-1"]
    bad = c.get("/api/table", params={"where": "lr > > 1"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "where: unexpected '>' at position 6 of 'lr > > 1'; "
                                   "expected a key, a number or a string"}


def test_a_nan_system_sample_is_a_gap_not_an_error(tmp_path: Path) -> None:
    with Run.create(tmp_path, "n") as run:
        run.log_system({"cpu_pct": float("nan")}, wall_time=100.0)
        run.log_system({"cpu_pct": 3.0}, wall_time=101.0)
    answer = client(tmp_path).get("/api/runs/n/system")
    assert answer.status_code == 200
    assert answer.json() == {"cpu_pct": {"times": [100.0, 101.0], "values": [None, 3.0]}}
