"""Views on a series of 1,000,000 points: the dashboard API's 2,000-point window, and the first
chart in headless Chromium (dashboard and HTML report).

Baselines in the same process, interleaved round by round: reading the whole series with
RunReader (what any answer must at least do without a cache), and the naive answer that ships
all points as JSON; for the browser, a report that inlines every point instead of the min/max
envelope. Needs /usr/bin/chromium, playwright, starlette and uvicorn.

Run: .venv/bin/python bench/bench_views.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from loopwise.record import Run, RunReader
from loopwise.view.payload import finite_list
from loopwise.view.report import write_report

N = 1_000_000
SRC = str(Path(__file__).resolve().parents[1] / "src")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking"]


def make_run(root: Path) -> Path:
    import math
    import random

    rng = random.Random(0)
    values = array("d", (2 * math.exp(-i / 2e5) + rng.random() * 0.05 for i in range(N)))
    values[654_321] = 40.0
    steps = array("q", range(1, N + 1))
    times = array("d", (1.7e9 + i * 0.01 for i in range(N)))
    with Run.create(root, "big") as run:
        run.log_columns({"loss": (steps, times, values)})
        for epoch in range(1, 11):
            run.log_epoch(epoch, {"loss": 0.5, "val_loss": 0.6}, step=epoch * N // 10)
    return root / "big"


def timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_views_"))
    run_dir = make_run(tmp / "runs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": SRC}
    server = subprocess.Popen([sys.executable, "-m", "loopwise", "ui", str(tmp / "runs"),
                               "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/openapi.json", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)

        def get(path: str) -> bytes:
            return bytes(urllib.request.urlopen(base + path, timeout=30).read())

        cold = timed(lambda: get("/api/runs/big/series/loss?points=2000"))
        rows: dict[str, list[float]] = {k: [] for k in (
            "read whole series (RunReader.series)", "naive: all points as JSON",
            "API full range, 2,000 points", "API zoom 10% window, 2,000 points",
            "API zoom 0.1% window, 2,000 points", "API epoch axis, 2,000 points")}
        reader = RunReader(run_dir)
        for r in range(args.rounds):
            lo = 100_000 + r * 50_000
            jobs = [
                lambda: reader.series("loss"),
                lambda: json.dumps(finite_list(reader.series("loss").values)),
                lambda: get("/api/runs/big/series/loss?points=2000"),
                lambda lo=lo: get(f"/api/runs/big/series/loss?start={lo}&end={lo + 100_000}"
                                  "&points=2000"),
                lambda lo=lo: get(f"/api/runs/big/series/loss?start={lo}&end={lo + 1000}"
                                  "&points=2000"),
                lambda: get("/api/runs/big/series/loss?points=2000&x=epoch"),
            ]
            for name, job in zip(rows, jobs, strict=True):
                rows[name].append(timed(job))
        spike = json.loads(get("/api/runs/big/series/loss?points=2000"))
        print(f"API first request (cold cache): {cold * 1e3:.1f} ms; spike kept: "
              f"{max(v for v in spike['values'] if v is not None) == 40.0}")
        print("| measurement | median ms | best ms |\n|---|---|---|")
        for name, times in rows.items():
            print(f"| {name} | {statistics.median(times) * 1e3:.1f} | {min(times) * 1e3:.1f} |")
        browser_rows(base, run_dir, tmp, args.rounds)
    finally:
        server.terminate()
        server.wait()


def browser_rows(base: str, run_dir: Path, tmp: Path, rounds: int) -> None:
    from playwright.sync_api import sync_playwright

    report = write_report(run_dir, tmp / "report.html")
    t0 = time.perf_counter()
    naive = write_report(run_dir, tmp / "naive.html", max_points=N + 100)
    naive_write = time.perf_counter() - t0
    pages = {"dashboard, first chart (2,000-point window)": base + "/?run=big&metric=loss",
             "report, first chart (4,000-point envelope)": report.as_uri(),
             "naive report, every point inlined": naive.as_uri()}
    results: dict[str, list[float]] = {k: [] for k in pages}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(rounds):
            for name, url in pages.items():
                page = browser.new_page()
                page.goto(url)
                page.wait_for_function("() => window.__loopwiseFirstChart !== undefined",
                                       timeout=120_000)
                results[name].append(page.evaluate("window.__loopwiseFirstChart") / 1e3)
                page.close()
        browser.close()
    print(f"\nreport sizes: {report.stat().st_size / 1e6:.2f} MB (envelope), "
          f"{naive.stat().st_size / 1e6:.1f} MB (every point, written in {naive_write:.1f} s)")
    print("| page (1,000,000-point series) | median ms to first chart | best ms |\n|---|---|---|")
    for name, times in results.items():
        print(f"| {name} | {statistics.median(times) * 1e3:.0f} | {min(times) * 1e3:.0f} |")


if __name__ == "__main__":
    main()
