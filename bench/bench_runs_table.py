"""The dashboard's run table over a sweep of 1,000 (and 10,000) runs: ``/api/runs`` and
``/api/table`` warm, and the table's first render in headless Chromium; MLflow's runs page and
its runs-search API on the same runs as the peer (``--mlflow``).

The runs are tests/view/_sweep.py's sweep (a nested config of 6 keys, per-step loss and lr,
per-epoch val_loss and val_acc; 40 runs written by ``Run.create``, the others clones of them).
``loopwise ui`` serves them on a free 127.0.0.1 port, warm (every row read once) before the
rounds. Per round, interleaved: one GET of each API path (wall time of the whole answer, over
HTTP); one page load in a fresh browser context (1400x1000), the time from navigation start
to the table's first render with its rows (``window.LoopwiseRunsTable.firstRender()``,
``performance.now()`` in the page).

With ``--mlflow``: the same runs logged to MLflow (params flattened as loopwise exports them,
the final and best metrics as metrics) in a SQLite store, served by ``mlflow server --workers
1``; MLflow's ``runs/search`` API (max_results 1000, the page size of its runs table) and its
experiment's runs page (``#/experiments/ID/runs``, the machine-learning view) until its runs
table (ag-grid) shows more than 5 rows with run links. Goals: first render <= 500 ms and
``/api/runs`` <= 200 ms with 1,000 runs.

Run: .venv/bin/python bench/bench_runs_table.py [--rounds 5] [--runs 1000,10000] [--mlflow]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "view"))
from _sweep import clone_sweep

from _timing import Table, arguments, emit, interleaved, rounds_of
from loopwise.view.dashboard.serve import free_port

SRC = str(Path(__file__).resolve().parents[1] / "src")
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 1000}


def _wait_http(url: str, proc: subprocess.Popen[Any], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({proc.returncode})")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url}: no answer in {timeout} s")


def _get(url: str, data: bytes | None = None) -> float:
    time.sleep(0.3)  # past the dashboard's 0.25 s sharing of one scan: each GET scans
    t0 = time.perf_counter()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        r.read()
    return (time.perf_counter() - t0) * 1000


# Runs in the page before its own scripts: checks ``cond`` on every frame and keeps the first
# time it holds (ms since navigation start; CSP-safe: no string is evaluated in the page).
POLL = """(() => { if (window.top !== window) return;
  const tick = () => { let ok = false; try { ok = !!(%s); } catch (e) {}
    if (ok) { window.__benchDone = performance.now(); return; }
    requestAnimationFrame(tick); };
  requestAnimationFrame(tick); })();"""


def _page_time(browser: Any, url: str, cond: str, *, timeout: float = 120.0) -> float:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.add_init_script(POLL % cond)
        page = context.new_page()
        page.goto(url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = page.evaluate("() => window.__benchDone || 0")
            if done:
                return float(done)
            page.wait_for_timeout(20)
        raise RuntimeError(f"{url}: not drawn in {timeout} s")
    finally:
        context.close()


def _start_ui(root: Path) -> tuple[subprocess.Popen[Any], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen([sys.executable, "-m", "loopwise", "ui", str(root), "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/openapi.json", proc)
    _get(url + "/api/table")  # warm: every row read once
    return proc, url


def _mlflow(root: Path, tmp: Path) -> tuple[subprocess.Popen[Any], str, str]:
    """The runs logged to MLflow (SQLite store) and ``mlflow server`` over them."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    from loopwise.view.runs_table import RunTable

    db = f"sqlite:///{tmp / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=db)
    exp = client.create_experiment("sweep", artifact_location=str(tmp / "artifacts"))
    for row in RunTable(root).rows():
        run = client.create_run(exp, run_name=row.name)
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, row.steps) for k, v in row.final.items() if v is not None]
        metrics += [Metric("best_" + k.replace("/", "_"), v, now, row.steps)
                    for k, v in row.best.items() if v is not None]
        client.log_batch(run.info.run_id, metrics=metrics,
                         params=[Param(k, str(v)) for k, v in row.config.items()],
                         tags=[RunTag("loopwise.run", row.name)])
        client.set_terminated(run.info.run_id)
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", db,
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/health", proc)
    return proc, url, exp


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    p = arguments(__doc__, rounds=5)
    p.add_argument("--runs", default="1000,10000", help="root sizes, comma-separated")
    p.add_argument("--mlflow", action="store_true", help="also MLflow's runs page and API")
    args = p.parse_args()
    sizes = [int(n) for n in args.runs.split(",")]
    rounds = rounds_of(args)
    if args.quick:
        sizes = sizes[:1]
    from playwright.sync_api import sync_playwright

    tables = []
    first = ("window.LoopwiseRunsTable && window.LoopwiseRunsTable.firstRender() !== null && "
             "document.querySelectorAll('#lw-run-table tr[data-run]').length > 5")
    tmp = Path(tempfile.mkdtemp(prefix="lw-bench-table-"))
    procs: list[subprocess.Popen[Any]] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for n in sizes:
                root = tmp / f"runs{n}"
                t0 = time.perf_counter()
                clone_sweep(root, n)
                made = time.perf_counter() - t0
                proc, url = _start_ui(root)
                procs.append(proc)
                variants = {
                    "/api/runs (warm)": lambda url=url: _get(url + "/api/runs"),
                    "/api/table (warm)": lambda url=url: _get(url + "/api/table"),
                    "/api/table?where=... (warm)": lambda url=url: _get(
                        url + "/api/table?where=optimizer.lr%20%3C%200.01%20and%20"
                              "status%20%3D%3D%20finished"),
                    "table first render, headless Chromium": lambda url=url: _page_time(
                        browser, url + "/", first),
                }
                peer: dict[str, Any] = {}
                if args.mlflow and n <= 1000:  # logging 10,000 runs to MLflow takes an hour
                    mproc, murl, exp = _mlflow(root, tmp / f"mlflow{n}")
                    procs.append(mproc)
                    body = json.dumps({"experiment_ids": [exp], "max_results": 1000}).encode()
                    search = murl + "/ajax-api/2.0/mlflow/runs/search"
                    _get(search, body)
                    peer = {
                        "MLflow runs/search API (1,000 runs a page)":
                            lambda search=search, body=body: _get(search, body),
                        "MLflow experiment page, runs table shown":
                            lambda murl=murl, exp=exp: _page_time(
                                browser, f"{murl}/#/experiments/{exp}/runs?"
                                "workflowType=machine_learning",
                                "document.querySelectorAll('.ag-row a[href*=\"/runs/\"]')"
                                ".length > 5"),
                    }
                samples = interleaved({**variants, **peer}, rounds=rounds)
                table = Table(f"runs_table_{n}", f"Run table, {n:,} runs", "ms",
                              ratio_label="x loopwise's (API: /api/table; page: first render)")
                base = {"MLflow runs/search API (1,000 runs a page)": "/api/table (warm)",
                        "MLflow experiment page, runs table shown":
                            "table first render, headless Chromium"}
                for name, values in samples.items():
                    table.add(name, values, baseline=samples[base[name]] if name in base
                              else samples[name])
                table.notes.append(f"{n:,} runs made in {made:.1f} s (40 written by "
                                   "Run.create, the others cloned)")
                tables.append(table)
                table.print()
                for proc in procs:
                    _stop(proc)
                procs.clear()
            browser.close()
    finally:
        for proc in procs:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    emit(tables, args)


if __name__ == "__main__":
    main()
