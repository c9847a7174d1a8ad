"""Backfill of a recorded run: ``loopwise export RUN --to tensorboard DIR`` and ``--to mlflow
URI`` of a run of 1,000,000 points (one series, the most events for TensorBoard), each as the
process a user starts (start-up, reading the record, delivery, close), wall time.

MLflow is a real ``mlflow server`` (SQLite store, ``--workers 1``) started here, and the
baseline is MLflow's own client on the same server and points: ``MlflowClient.log_batch`` of
1,000 metrics per call (MLflow's limit), one call after the other, as a script would. Beside
them, the server's CPU time per 1,000 metrics (what every log_batch costs the server, whoever
sends it). Each MLflow round goes to an experiment of its own (a new MLflow run).

Run: .venv/bin/python bench/bench_backfill.py [--quick] [--rounds 3] [--mlflow-rounds 1]
     [--points N] [--json PATH]
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
from _timing import Table, arguments, emit, interleaved
from loopwise.record import Run

SRC = str(Path(__file__).resolve().parents[1] / "src")
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PYTHONPATH": SRC, "MLFLOW_DISABLE_TELEMETRY": "true"}


def record(root: Path, n: int) -> Path:
    now = time.time()
    with Run.create(root, "backfill") as run:
        run.log_columns({"loss": (array("q", range(1, n + 1)),
                                  array("d", (now + i * 1e-3 for i in range(n))),
                                  array("d", (1.0 / (i + 1) for i in range(n))))})
    return run.path


def export(run: Path, n: int, *target: str) -> float:
    """Wall seconds of ``loopwise export RUN --to ...`` as a process of its own."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "loopwise", "export", str(run), "--to",
                           *target], env=ENV, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or f"mirrored {n} points" not in proc.stdout:
        raise RuntimeError(f"export --to {target[0]} failed ({proc.returncode}): "
                           f"{proc.stdout}{proc.stderr}")
    return seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mlflow(tmp: Path) -> tuple[subprocess.Popen[Any], str]:
    port = free_port()
    proc = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri",
                             f"sqlite:///{tmp / 'mlflow.db'}", "--artifacts-destination",
                             str(tmp / "artifacts"), "--host", "127.0.0.1", "--port",
                             str(port), "--workers", "1"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start") from None
            time.sleep(0.3)


def server_cpu(proc: subprocess.Popen[Any]) -> float:
    """CPU seconds of the MLflow server so far (its process and workers)."""
    import psutil

    main = psutil.Process(proc.pid)
    total = 0.0
    for p in [main, *main.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def log_batch_by_hand(url: str, n: int, experiment: str) -> float:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    exp_id = client.create_experiment(experiment)
    run_id = client.create_run(exp_id).info.run_id
    now = time.time()
    t0 = time.perf_counter()
    for i in range(0, n, 1000):
        client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (j + 1), int((now + j * 1e-3)
                                                                           * 1000), j + 1)
                                          for j in range(i, min(n, i + 1000))])
    client.set_terminated(run_id)
    return time.perf_counter() - t0


def main() -> None:
    parser = arguments(__doc__, rounds=3)
    parser.add_argument("--mlflow-rounds", type=int, default=1,
                        help="rounds of the MLflow backfill and its baseline (1: ~4 min)")
    parser.add_argument("--points", type=int, default=None,
                        help="points of the run (1,000,000; quick 100,000)")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    n = args.points or (100_000 if args.quick else 1_000_000)
    tmp = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    try:
        run = record(tmp / "runs", n)
        counter = iter(range(1_000_000))
        tb = interleaved({"tb": lambda: export(run, n, "tensorboard",
                                               str(tmp / f"tb{next(counter)}"))},
                         rounds=rounds, progress=True)["tb"]
        proc, url = start_mlflow(tmp)
        try:
            cpu: dict[str, list[float]] = {"mlflow": [], "hand": []}

            def measured(name: str, fn: Any) -> Any:
                def run_it() -> float:
                    c0 = server_cpu(proc)
                    seconds = float(fn())
                    cpu[name].append((server_cpu(proc) - c0) / n * 1e6)  # ms per 1,000
                    return seconds
                return run_it

            ml = interleaved({
                "hand": measured("hand", lambda: log_batch_by_hand(
                    url, n, f"hand-{next(counter)}")),
                "mlflow": measured("mlflow", lambda: export(
                    run, n, "mlflow", url, "--experiment", f"backfill-{next(counter)}")),
            }, rounds=args.mlflow_rounds, progress=True)
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = Table(f"backfill_{n}", f"Backfill of a recorded run of {n:,} points (one series), "
                  "`loopwise export RUN --to ...` as a process of its own (start-up included); "
                  f"TensorBoard {rounds} rounds, MLflow {args.mlflow_rounds}", "s",
                  ratio_label="x MLflow's client by hand")
    table.add("TensorBoard: loopwise export --to tensorboard DIR", tb,
              note=f"{n / min(tb) / 1e6:.2f} M points/s at best")
    table.add("MlflowClient.log_batch by hand, 1,000 per call, one at a time (same server)",
              ml["hand"], note=f"server CPU {min(cpu['hand']):.0f} ms per 1,000 metrics")
    table.add("MLflow: loopwise export --to mlflow URI (mlflow server, SQLite, --workers 1)",
              ml["mlflow"], baseline=ml["hand"],
              note=f"server CPU {min(cpu['mlflow']):.0f} ms per 1,000 metrics")
    table.notes.append(f"load average at start: {load}; at end: "
                       + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    table.notes.append("the MLflow server's CPU per 1,000 metrics is its SQLAlchemy ORM "
                       "inserting them (SqlAlchemyStore._log_metrics); no client can deliver "
                       "faster than the server's CPU takes them")
    emit([table], args)


if __name__ == "__main__":
    main()
