"""First chart of a 1,000,000-point series in headless Chromium: loopwise's dashboard against
TensorBoard's and MLflow's own UIs on the same series.

bench_views' series (one spike of 40.0), recorded by loopwise and mirrored the way a user
would (``loopwise export RUN --to tensorboard DIR`` / ``--to mlflow sqlite:///...``), served by
``loopwise ui``, ``tensorboard --logdir`` and ``mlflow server --workers 1`` on free 127.0.0.1
ports, each warm. Per round and page: a fresh browser context, a 1280x1400 viewport, the time
from navigation start (``performance.now()``) to the first chart drawn with the series:

- loopwise dashboard ``/?run=big&metric=loss``: uPlot's draw hook (``window.__loopwiseFirstChart``);
- TensorBoard ``/?tagFilter=^loss$#timeseries``: the tag's card has its chart canvas and its data
  table row (filled from the fetched series); the line itself is drawn by TensorBoard's worker on
  an OffscreenCanvas, checked once drawn by counting the line's pixels in a screenshot;
- MLflow run page, Model metrics tab, and MLflow's metric page: a plotly line with >= 100
  vertices in the DOM (the run's other charts have 10 points).

A page that draws nothing within ``--timeout`` seconds is recorded as "did not draw"; rounds
interleaved. Each row also says what the page had fetched of the series when it drew, and
whether the spike was in it. Needs /usr/bin/chromium, playwright, tensorboard and mlflow.

Run: .venv/bin/python bench/bench_ui_peers.py [--rounds 5] [--quick] [--json PATH]
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Table, arguments, emit, interleaved, rounds_of
from bench_views import CHROMIUM_ARGS, N, make_run
from loopwise.view.dashboard.serve import free_port

SRC = str(Path(__file__).resolve().parents[1] / "src")
BIN = Path(sys.executable).parent
VIEWPORT = {"width": 1280, "height": 1400}
SPIKE = 40.0
# Runs in every page before its own scripts: polls the page's condition on every frame and
# keeps the first time it holds (ms since navigation start) and, for a plotly chart, the
# vertices of its longest line at that moment.
POLL = """(() => { if (window.top !== window) return;
  const cond = () => (%s);
  const tick = () => { let ok = false; try { ok = !!cond(); } catch (e) {}
    if (ok) { window.__benchDrawn = performance.now(); window.__benchVertices = %s; return; }
    requestAnimationFrame(tick); };
  requestAnimationFrame(tick); })();"""
VERTICES = ("Math.max(0, ...[...document.querySelectorAll('.js-plotly-plot path.js-line')].map("
            "p => ((p.getAttribute('d') || '').match(/L/g) || []).length + 1))")
PLOTLY_LINE = f"{VERTICES} >= 100"
TB_CARD = ("document.querySelector('scalar-card line-chart canvas') && "
           "document.querySelector('scalar-card tb-data-table-content-row')")


@dataclass
class Page:
    name: str
    url: str
    condition: str  # a JS expression, true once the chart is drawn
    data: str  # substring of the URLs whose responses carry the series
    values: Callable[[Any], list[float]]  # the series' values in one such response
    value_js: str = "window.__benchDrawn"
    warm: bool = True  # one untimed load before the rounds
    check_pixels: bool = False
    seen: list[tuple[int, bool]] = field(default_factory=list)  # (points, spike) per round
    lines: list[bool] = field(default_factory=list)
    vertices: list[int] = field(default_factory=list)


def _loopwise_values(body: Any) -> list[float]:
    return [v for v in body.get("values", []) if v is not None]


def _tensorboard_values(body: Any) -> list[float]:
    return [p["value"] for item in body if item.get("tag") == "loss"
            for series in item.get("runToSeries", {}).values() for p in series]


def _mlflow_values(body: Any) -> list[float]:
    return [m["value"] for m in body.get("metrics", []) if m.get("key") == "loss"]


def start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def get(url: str, *, data: bytes | None = None) -> bytes:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return bytes(resp.read())


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, *, timeout: float = 300,
             ok: Callable[[bytes], bool] = lambda body: True) -> float:
    """Seconds until ``url`` answers 200 with a body ``ok`` accepts."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError, ValueError, LookupError):  # not up (or loaded) yet
            if ok(get(url)):
                return time.perf_counter() - t0
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def mirror(run_dir: Path, kind: str, target: str) -> float:
    """``loopwise export RUN --to KIND TARGET`` (the user's path); its seconds."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "loopwise", "export", str(run_dir), "--to", kind,
                    target], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": SRC, "MLFLOW_DISABLE_TELEMETRY": "true"})
    return time.perf_counter() - t0


def _line_pixels(page: Any) -> bool:
    """Whether TensorBoard's chart canvas shows the line (dark pixels over a light chart)."""
    import io

    import numpy as np
    from PIL import Image

    canvas = page.query_selector("scalar-card line-chart canvas")
    if canvas is None:
        return False
    pixels = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB"), dtype=int)
    return int((pixels.sum(axis=2) < 400).sum()) >= 100


def measure(browser: Any, page_def: Page, timeout: float) -> float:
    """Seconds from navigation to the first chart; ``timeout`` when it did not draw."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = browser.new_page(viewport=VIEWPORT)
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r) if page_def.data in r.url else None)
    page.add_init_script(POLL % (page_def.condition,
                                 VERTICES if page_def.condition == PLOTLY_LINE else "null"))
    try:
        page.goto(page_def.url, wait_until="commit")
        page.wait_for_function("() => window.__benchDrawn !== undefined",
                               timeout=timeout * 1000, polling=50)
        seconds = float(page.evaluate(page_def.value_js)) / 1e3
        if page_def.condition == PLOTLY_LINE:
            page_def.vertices.append(int(page.evaluate("window.__benchVertices")))
    except PlaywrightTimeout:
        seconds = None
    got = list(responses)  # those that arrived before the chart was drawn
    values: list[float] = []
    for resp in got:
        with contextlib.suppress(Exception):  # an aborted or non-JSON response: no points
            values += page_def.values(json.loads(resp.body()))
    page_def.seen.append((len(values), SPIKE in values))
    if page_def.check_pixels and seconds is not None:
        page_def.lines.append(_line_pixels(page))
    page.close()
    return timeout if seconds is None else seconds


def main() -> None:
    parser = arguments(__doc__, rounds=5)
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds a page may take to draw (default 60)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_ui_peers_"))
    try:
        run(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, args: Any) -> None:
    rounds = rounds_of(args)
    ml_points = 100_000 if args.quick else N
    run_dir = make_run(tmp / "runs")
    notes = []
    tb_secs = mirror(run_dir, "tensorboard", str(tmp / "tb"))
    ml_run = run_dir
    if ml_points < N:  # the first ml_points points of the same series
        from loopwise.record import Run, RunReader

        s = RunReader(run_dir).series("loss")
        with Run.create(tmp / "mlruns-src", "big") as small:
            small.log_columns({"loss": (s.steps[:ml_points], s.times[:ml_points],
                                        s.values[:ml_points])})
        ml_run = tmp / "mlruns-src" / "big"
    ml_secs = mirror(ml_run, "mlflow", f"sqlite:///{tmp / 'mlflow.db'}")
    notes.append(f"mirroring with `loopwise export`: TensorBoard {N:,} points in {tb_secs:.1f} s, "
                 f"MLflow {ml_points:,} points in {ml_secs:.0f} s (one-off, before the rounds)")
    ports = {k: free_port() for k in ("loopwise", "tensorboard", "mlflow")}
    procs = []
    try:
        lw = start([sys.executable, "-m", "loopwise", "ui", str(tmp / "runs"), "--port",
                    str(ports["loopwise"])], tmp / "loopwise.log", {"PYTHONPATH": SRC})
        procs.append(lw)
        tb = start([str(BIN / "tensorboard"), "--logdir", str(tmp / "tb"), "--host",
                    "127.0.0.1", "--port", str(ports["tensorboard"])], tmp / "tensorboard.log")
        procs.append(tb)
        ml = start([str(BIN / "mlflow"), "server", "--backend-store-uri",
                    f"sqlite:///{tmp / 'mlflow.db'}", "--artifacts-destination",
                    str(tmp / "artifacts"), "--host", "127.0.0.1", "--port", str(ports["mlflow"]),
                    "--workers", "1"], tmp / "mlflow.log", {"MLFLOW_DISABLE_TELEMETRY": "true"})
        procs.append(ml)
        base = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
        ready = {
            "loopwise": wait_for(base["loopwise"] + "/api/runs/big/series/loss?points=2000",
                                 lw, tmp / "loopwise.log"),
            "TensorBoard": wait_for(
                base["tensorboard"] + "/data/plugin/scalars/scalars?run=.&tag=loss", tb,
                tmp / "tensorboard.log", ok=lambda b: json.loads(b)[-1][1] == N),
            "MLflow": wait_for(base["mlflow"] + "/health", ml, tmp / "mlflow.log")}
        notes.append("server start until it serves the series: " + ", ".join(
            f"{k} {v:.1f} s" for k, v in ready.items()) + " (one-off, not in the rounds)")
        exp = json.loads(get(base["mlflow"] + "/api/2.0/mlflow/experiments/get-by-name?"
                             "experiment_name=loopwise"))["experiment"]["experiment_id"]
        run_id = json.loads(get(base["mlflow"] + "/api/2.0/mlflow/runs/search", data=json.dumps(
            {"experiment_ids": [exp]}).encode()))["runs"][0]["info"]["run_id"]
        q = urllib.parse.quote
        pages = [
            Page("loopwise dashboard (2,000-point min/max window)",
                 base["loopwise"] + "/?run=big&metric=loss", "window.__loopwiseFirstChart",
                 "/series/loss", _loopwise_values, value_js="window.__loopwiseFirstChart"),
            Page("TensorBoard, Time Series tab filtered to the tag",
                 base["tensorboard"] + "/?tagFilter=%5Eloss%24#timeseries", TB_CARD,
                 "/timeseries/timeSeries", _tensorboard_values, check_pixels=True),
            Page(f"MLflow run page, Model metrics tab ({ml_points:,} points)",
                 f"{base['mlflow']}/#/experiments/{exp}/runs/{run_id}/model-metrics",
                 PLOTLY_LINE, "metric_key=loss", _mlflow_values),
            Page(f"MLflow metric page ({ml_points:,} points)",
                 f"{base['mlflow']}/#/metric?runs={q(json.dumps([run_id]))}&metric="
                 f"{q(json.dumps('loss'))}&experiments={q(json.dumps([exp]))}"
                 f"&plot_metric_keys={q(json.dumps(['loss']))}",
                 PLOTLY_LINE, "metric_key=loss", _mlflow_values, warm=False),
        ]
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for page_def in [pd for pd in pages if pd.warm]:  # the browser, servers' caches
                measure(browser, page_def, args.timeout)
                page_def.seen.clear()
                page_def.lines.clear()
                page_def.vertices.clear()
            samples = interleaved({pd.name: (lambda pd=pd: measure(browser, pd, args.timeout))
                                   for pd in pages}, rounds=rounds, progress=True)
            browser.close()
    finally:
        for proc in procs:
            stop(proc)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    table = Table("ui_peers", f"First chart of a {N:,}-point series in headless Chromium "
                  f"({rounds} interleaved rounds, load average at the end {load})", "ms",
                  baseline=pages[0].name, ratio_label="x loopwise dashboard's time")
    for page_def in pages:
        secs = samples[page_def.name]
        missed = sum(1 for s in secs if s >= args.timeout)
        points = sorted(n for n, _ in page_def.seen)[len(page_def.seen) // 2]
        spike = sum(1 for _, kept in page_def.seen if kept)
        note = (f"had fetched {points:,} points of the series when it drew, the 40.0 spike "
                f"among them in {spike} of {len(page_def.seen)} rounds")
        if page_def.vertices:
            v = sorted(page_def.vertices)[len(page_def.vertices) // 2]
            note += f"; its first line had {v:,} vertices"
        if page_def.lines:
            note += (f"; the line seen in the canvas in {sum(page_def.lines)} of "
                     f"{len(page_def.lines)}")
        if missed:
            note += f"; **did not draw in {args.timeout:.0f} s** in {missed} of {len(secs)}"
        table.add(page_def.name, [s * 1e3 for s in secs], note=note)
    table.notes += notes
    emit([table], args, extra={"timeout": args.timeout})


if __name__ == "__main__":
    main()
