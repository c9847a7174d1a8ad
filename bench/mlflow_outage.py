"""The delivery-after-outage figure of docs/reliability.md: a real ``mlflow server`` SIGKILLed
mid-run and restarted (same port, same store) while a run logs three series; then what MLflow
holds, the exporter's counts, the MLflow run's status and the run's exporter events.

    python bench/mlflow_outage.py OUT_DIR [--steps 80000 --kill-at 20000 --back-at 50000]

MLflow's own HTTP settings are left at their defaults (as a user has them). Not part of
``make bench``: it takes about 3.5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(root: Path, port: int) -> subprocess.Popen[bytes]:
    log = open(root / "mlflow-server.log", "ab")  # noqa: SIM115 - the server keeps it
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
         f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the MLflow server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=80_000)
    parser.add_argument("--kill-at", type=int, default=20_000)
    parser.add_argument("--back-at", type=int, default=50_000)
    args = parser.parse_args()
    from mlflow.tracking import MlflowClient

    from loopwise.export.mlflow import MLflowExporter
    from loopwise.record import Run, RunReader

    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        os.environ.pop(key, None)
    root = args.out.absolute()
    root.mkdir(parents=True, exist_ok=True)
    port = _port()
    uri = f"http://127.0.0.1:{port}"
    server = _server(root, port)
    run = Run.create(root / "runs")
    exporter = MLflowExporter(uri, close_timeout=300)
    run.add_exporter(exporter)
    start = time.time()
    down = start
    for step in range(1, args.steps + 1):
        run.advance()
        run.log_scalars({"loss": 1.0 / step, "acc": step / args.steps, "lr": 0.1}, step=step)
        if step == args.kill_at:
            run.flush()
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            down = time.time()
        elif step == args.back_at:
            run.flush()
            time.sleep(max(0.0, 10.0 - (time.time() - down)))  # down at least 10 s
            server = _server(root, port)
    run.close()
    try:
        client = MlflowClient(uri)
        for key in ("loss", "acc", "lr"):
            steps = [m.step for m in client.get_metric_history(exporter.run_id, key)]
            print(f"{key}: MLflow holds {len(steps)} points, {len(set(steps))} distinct steps "
                  f"of {args.steps} (repeated: {len(steps) - len(set(steps))})")
        print(f"exporter: {exporter.stats()}")
        print(f"MLflow run status: {client.get_run(exporter.run_id).info.status}")
        kinds = [e.kind for e in RunReader(run.path).events() if e.kind.startswith("exporter")]
        print(f"events: {sorted((k, kinds.count(k)) for k in set(kinds))}")
        print(f"wall time: {time.time() - start:.0f} s")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
