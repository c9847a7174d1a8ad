"""Exporters: the training thread's per-step cost with each attached, and the throughput each
delivers against its backend's usual client. All in one process.

1. Per-step cost: a TrainingMonitor loop (3 float metrics logged every step) over a run with no
   exporter, then with TensorBoard, MLflow (sqlite store) and Prometheus attached; the variants
   run interleaved, one of each per round, best round kept (the machine's drift moves them
   together). The time is the loop plus the run's flush (what the training thread waits for);
   each exporter's delivery goes on in its own thread and is drained, untimed, before the next
   variant. ``--work N`` gives every step N iterations of Python work (holding the GIL, like a
   step's own Python side), so that the loop lasts long enough for the exporters to deliver
   during it: their thread then competes with the training thread for the GIL.
2. Throughput, points per second delivered to the backend (timed until the backend has them):
   the exporter fed whole columns, against ``SummaryWriter.add_scalar`` per scalar (+ flush),
   ``MlflowClient.log_metric`` per scalar, and a hand-written ``log_batch`` of 1,000 metrics per
   call.

Run: .venv/bin/python bench/bench_exporters.py [--steps 50000] [--rounds 5] [--work 0]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
from loopwise import TrainingMonitor
from loopwise.export.base import Exporter
from loopwise.export.mlflow import MLflowExporter
from loopwise.export.prometheus import PrometheusExporter
from loopwise.export.tensorboard import TensorBoardExporter
from loopwise.record import Run


def busy(n: int) -> float:
    """Fixed Python work holding the GIL (a step's own Python-side cost)."""
    acc = 0.0
    for i in range(n):
        acc += i
    return acc


def loop_cost(root: Path, steps: int, make: Callable[[Path], Exporter | None],
              work: int = 0) -> float:
    run = Run.create(root, config={"lr": 0.1})
    exporter = make(root)
    if exporter is not None:
        run.add_exporter(exporter)
        assert exporter.flush(120)  # connected and idle before the clock starts
    monitor = TrainingMonitor(range(steps), run=run, file=io.StringIO(), system=False,
                              health=False)
    acc = 0.0
    t0 = time.perf_counter()
    for i in monitor:
        loss, a, b = 0.5, 0.25, float(i)
        acc += loss + a + b
        if work:
            acc += busy(work)
        monitor.log({"loss": loss, "a": a, "b": b})
    run.flush()
    elapsed = time.perf_counter() - t0
    if exporter is not None:
        assert exporter.flush(600), "the exporter did not catch up"
    run.close()
    return elapsed


def columns(n: int, key: str = "loss") -> dict[str, tuple[array, array, array]]:
    now = time.time()
    return {key: (array("q", range(1, n + 1)), array("d", (now + i * 1e-3 for i in range(n))),
                  array("d", (1.0 / (i + 1) for i in range(n))))}


def exporter_rate(exporter: Exporter, n: int) -> float:
    exporter.set_config({"lr": 0.1})
    assert exporter.flush(120)
    data = columns(n)
    t0 = time.perf_counter()
    exporter.log_columns(data)
    assert exporter.flush(600)
    rate = n / (time.perf_counter() - t0)
    exporter.close()
    return rate


def summary_writer_rate(folder: Path, n: int) -> float:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))
    t0 = time.perf_counter()
    for i in range(n):
        writer.add_scalar("loss", 1.0 / (i + 1), i + 1)
    writer.flush()
    rate = n / (time.perf_counter() - t0)
    writer.close()
    return rate


def mlflow_rates(uri: str, n_single: int, n_batch: int) -> tuple[float, float]:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("bench") or client.get_experiment(
        client.create_experiment("bench"))
    run_id = client.create_run(exp.experiment_id).info.run_id
    t0 = time.perf_counter()
    for i in range(n_single):
        client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i + 1)
    single = n_single / (time.perf_counter() - t0)
    now = int(time.time() * 1000)
    metrics = [Metric("loss2", 1.0 / (i + 1), now + i, i + 1) for i in range(n_batch)]
    t0 = time.perf_counter()
    for j in range(0, n_batch, 1000):
        client.log_batch(run_id, metrics=metrics[j:j + 1000])
    batch = n_batch / (time.perf_counter() - t0)
    return single, batch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--work", type=int, default=0,
                        help="Python loop iterations of work per step (0: an empty step)")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-exporters-"))
    os.chdir(tmp)  # MLflow's default artifact folder (./mlruns) and anything relative go there
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    variants: dict[str, Callable[[Path], Exporter | None]] = {
        "no exporter": lambda root: None,
        "TensorBoard": lambda root: TensorBoardExporter(root / "tb"),
        "MLflow (sqlite)": lambda root: MLflowExporter(uri, experiment="bench-loop"),
        "Prometheus": lambda root: PrometheusExporter(port=0),
    }
    loop_cost(tmp / "warm", 1000, variants["MLflow (sqlite)"])  # schema, imports
    best = dict.fromkeys(variants, float("inf"))
    for r in range(args.rounds):
        for name, make in variants.items():
            best[name] = min(best[name], loop_cost(tmp / f"r{r}", args.steps, make, args.work))
    base = best["no exporter"] / args.steps * 1e9
    print(f"\nPer-step cost, {args.steps} steps x 3 metrics, {args.work} iterations of work "
          f"per step, best of {args.rounds} rounds")
    print("| loop | ns/step | over no exporter |\n|---|---|---|")
    for name, seconds in best.items():
        ns = seconds / args.steps * 1e9
        print(f"| {name} | {ns:,.0f} | {ns - base:+,.0f} ns ({ns / base:.2f}x) |")

    if args.skip_throughput:
        return
    n = args.points
    rows = [
        ("TensorBoardExporter (columns)", exporter_rate(TensorBoardExporter(tmp / "tb-x"), n)),
        ("SummaryWriter.add_scalar per scalar", summary_writer_rate(tmp / "tb-sw", n)),
        ("MLflowExporter (log_batch, 1,000/call)",
         exporter_rate(MLflowExporter(uri, experiment="bench-rate"), n)),
    ]
    single, batch = mlflow_rates(uri, 500, n)
    rows += [("MlflowClient.log_metric per scalar", single),
             ("MlflowClient.log_batch by hand, 1,000/call", batch),
             ("PrometheusExporter (latest value per series)",
              exporter_rate(PrometheusExporter(port=0), n))]
    print(f"\nDelivered throughput ({n:,} points; log_metric: 500)")
    print("| client | points/s |\n|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
