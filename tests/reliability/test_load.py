"""Load: 10 training processes write 10 runs in one root while the dashboard (``loopwise ui``,
real uvicorn) serves them, a real Prometheus scrapes their live exporters, and a reader process
exports them in a loop. No "database is locked", no lost row, every dashboard request answered.

The dashboard's latencies (p50, p99, max) are printed and written to ``load.json`` in the
artifacts folder (env LOOPWISE_ARTIFACTS) for docs/reliability.md; nothing is asserted on time.
``LOOPWISE_SOAK=1`` runs 10x the steps.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _fuzz_tools import SOAK, run_cli  # first: it puts tests/view and tests/export on the path

# isort: split
from _export_servers import binary, free_port, get, need, start, stop, wait_http
from _view_kit import Server

from loopwise.export.dashboards import write_dashboards
from loopwise.record import RunReader

need("prometheus_client")
need("uvicorn")

WRITERS = 10
STEPS = 3000 if SOAK else 300
DELAY = 0.01
HERE = Path(__file__).resolve().parent
SRC = str(HERE.parents[1] / "src")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


class Poller(threading.Thread):
    """GETs the dashboard's API (the run list, then one listed run's page, series and events)
    as fast as it answers, recording each request's status and latency."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop_event = threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.rng = random.Random(0)

    def _get(self, path: str) -> Any:
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as resp:
                body = json.loads(resp.read())
                status = resp.status
        except urllib.error.HTTPError as exc:
            self.failures.append(f"{path}: {exc.code} {exc.read()[:200]!r}")
            return None
        except OSError as exc:
            self.failures.append(f"{path}: {exc}")
            return None
        self.latencies.append(time.perf_counter() - t0)
        if status != 200:
            self.failures.append(f"{path}: {status}")
        return body

    def run(self) -> None:
        while not self.stop_event.is_set():
            runs = self._get("/api/runs") or []
            if not runs:
                time.sleep(0.05)
                continue
            name = urllib.parse.quote(self.rng.choice(runs)["name"], safe="")
            run = self._get(f"/api/runs/{name}")
            if run and "loss" in run["keys"]:
                self._get(f"/api/runs/{name}/series/loss?points=500")
            self._get(f"/api/runs/{name}/events")


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    answer = json.loads(get(f"{base}/api/v1/query?query={urllib.parse.quote(promql)}"))
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_ten_writers_a_dashboard_prometheus_and_a_reader(tmp_path: Path) -> None:
    prometheus = binary("prometheus")
    root = tmp_path / "runs"
    root.mkdir()
    ports = [free_port() for _ in range(WRITERS)]
    write_dashboards(tmp_path / "dash", targets=[f"127.0.0.1:{p}" for p in ports],
                     scrape_interval="1s")
    prom_port = free_port()
    prom_log = tmp_path / "prometheus.log"
    prom = start([prometheus, f"--config.file={tmp_path / 'dash/prometheus/prometheus.yml'}",
                  f"--web.listen-address=127.0.0.1:{prom_port}",
                  f"--storage.tsdb.path={tmp_path / 'tsdb'}"], prom_log)
    base = f"http://127.0.0.1:{prom_port}"
    server = writers = reader = None
    release, stop_reader = tmp_path / "release", tmp_path / "stop-reader"
    poller: Poller | None = None
    try:
        server = Server(root)
        wait_http(f"{base}/-/ready", prom, prom_log, timeout=120)
        poller = Poller(server.url)
        poller.start()
        t0 = time.monotonic()
        writers = [subprocess.Popen(
            [sys.executable, str(HERE / "_load_child.py"), str(root), f"w{i:02d}", str(STEPS),
             str(DELAY), str(port), str(release)], env=_env(), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i, port in enumerate(ports)]
        reader = subprocess.Popen(
            [sys.executable, str(HERE / "_load_reader.py"), str(root), str(tmp_path / "out"),
             str(stop_reader)], env=_env(), text=True, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        for w in writers:  # each loop ends; its run stays open until Prometheus saw it all
            line = w.stdout.readline()  # type: ignore[union-attr]
            assert line == "done\n", (line, w.stderr.read())  # type: ignore[union-attr]
        # Prometheus scraped every run's last state: the last loss of each, 1/STEPS
        deadline = time.monotonic() + 90
        seen: dict[str, float] = {}
        while len(seen) < WRITERS and time.monotonic() < deadline:
            seen = {r["metric"]["run"]: float(r["value"][1])
                    for r in _query(base, 'loopwise_metric{series="loss"}')
                    if float(r["value"][1]) == 1.0 / STEPS}
            time.sleep(0.5)
        assert sorted(seen) == [f"w{i:02d}" for i in range(WRITERS)], (seen, prom_log.read_text()[-2000:])
        steps = {r["metric"]["run"]: float(r["value"][1]) for r in _query(base, "loopwise_step")}
        assert all(steps.get(f"w{i:02d}") == STEPS for i in range(WRITERS)), steps
        release.touch()
        results = [w.communicate(timeout=120) for w in writers]
        elapsed = time.monotonic() - t0
        wait_for_mirror = time.monotonic() + 60  # the reader mirrors a finished run too
        while not list((tmp_path / "out" / "tb").glob("*/*")) and \
                time.monotonic() < wait_for_mirror and reader.poll() is None:
            time.sleep(0.2)
        stop_reader.touch()
        reader_out, reader_err = reader.communicate(timeout=120)
    finally:
        release.touch()
        stop_reader.touch()
        if poller is not None:
            poller.stop_event.set()
            poller.join(60)
        for proc in [*(writers or []), *([reader] if reader else [])]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if server is not None:
            server.stop()
        stop(prom)
    for w, (_out, err) in zip(writers, results):
        assert w.returncode == 0, err
        assert "locked" not in err.lower(), err
    read = json.loads(reader_out.strip().splitlines()[-1])
    assert "locked" not in reader_err.lower() and "Traceback" not in reader_err, reader_err
    assert read["failures"] == [] and read["exports"] >= WRITERS and read["mirrors"] >= 1, read
    assert poller is not None and poller.failures == [], poller.failures[:10]
    assert len(poller.latencies) > 50
    # no lost row: every step of every writer is in its run, and in a CSV export of it
    for i in range(WRITERS):
        path = root / f"w{i:02d}"
        reader_ = RunReader(path)
        assert reader_.info["status"] == "finished"
        loss = reader_.series("loss")
        assert list(loss.steps) == list(range(1, STEPS + 1))
        assert list(loss.values) == [1.0 / (s + 1) for s in range(STEPS)]
        assert len(reader_.series("acc").values) == STEPS
        code, _, err = run_cli(["export", str(path), str(tmp_path / f"final{i}.csv")])
        assert code == 0, err
        rows = (tmp_path / f"final{i}.csv").read_text().splitlines()
        assert len(rows) == STEPS + 1  # a header and one row per step
        assert "locked" not in "".join(e.message for e in reader_.events()).lower()
    lat = poller.latencies
    figures = {"writers": WRITERS, "steps_each": STEPS, "seconds": round(elapsed, 1),
               "requests": len(lat), "p50_ms": round(1000 * statistics.median(lat), 1),
               "p99_ms": round(1000 * _percentile(lat, 0.99), 1),
               "max_ms": round(1000 * max(lat), 1), "reader_exports": read["exports"],
               "tensorboard_mirrors": read["mirrors"],
               "reader_rounds": read["rounds"]}
    print("load figures:", json.dumps(figures))
    folder = Path(os.environ.get("LOOPWISE_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "load.json").write_text(json.dumps(figures, indent=2) + "\n")


pytestmark = pytest.mark.timeout(600 if SOAK else 300)
