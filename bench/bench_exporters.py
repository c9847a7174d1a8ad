"""Exporters: the training thread's per-step cost with each attached, and the throughput each
delivers against its backend's usual client. All in one process, the variants interleaved.

1. Per-step cost: a TrainingMonitor loop (3 float metrics logged every step, each step ~85 us of
   Python work holding the GIL, like a fast step's own Python side) over a run with no exporter,
   then with TensorBoard, MLflow (a ``sqlite:///`` store) and Prometheus attached, each with its
   default delivery (TensorBoard and MLflow: a process of their own that follows the record;
   Prometheus: its endpoint in the training process), and TensorBoard and MLflow with
   ``delivery="thread"`` for comparison. The time is the loop plus the run's flush (what the
   training thread waits for); every exporter delivers during the loop (the loop lasts long
   enough) and is drained, untimed, before the next variant. Also the CPU time of the whole
   training process over the same loop (``time.process_time``): what the training process
   itself spends, whatever else the machine runs.
2. Delivered throughput, points per second until the backend has them: each exporter fed from
   the record (``run.log_columns`` of one series, then ``run.flush()`` and ``exporter.flush()``),
   against its backend's client called the usual way: ``SummaryWriter.add_scalar`` per scalar
   (+ ``flush()``), ``MlflowClient.log_metric`` per scalar (and ``log_batch`` of 1,000 by hand),
   ``Gauge.labels(...).set`` per scalar.

Run: .venv/bin/python bench/bench_exporters.py [--quick] [--rounds 5] [--steps N] [--work N]
     [--points N] [--json PATH]
"""

from __future__ import annotations

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
from _timing import Table, arguments, emit, interleaved, rounds_of
from loopwise import TrainingMonitor
from loopwise.export.base import Exporter
from loopwise.export.mlflow import MLflowExporter
from loopwise.export.prometheus import PrometheusExporter
from loopwise.export.tensorboard import TensorBoardExporter
from loopwise.record import Run

Make = Callable[[Path], Exporter | None]


def busy(n: int) -> float:
    """Fixed Python work holding the GIL (a step's own Python-side cost)."""
    acc = 0.0
    for i in range(n):
        acc += i
    return acc


def loop_seconds(root: Path, steps: int, make: Make, work: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole training process) of the loop + run.flush()."""
    run = Run.create(root, config={"lr": 0.1})
    exporter = make(root)
    if exporter is not None:
        run.add_exporter(exporter)
        assert exporter.flush(120), "the exporter did not connect"  # idle before the clock
    monitor = TrainingMonitor(range(steps), run=run, file=io.StringIO(), system=False,
                              health=False)
    acc = 0.0
    c0, t0 = time.process_time(), time.perf_counter()
    for i in monitor:
        acc += busy(work)
        monitor.log({"loss": 0.5, "a": 0.25, "b": float(i)})
    run.flush()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if exporter is not None:
        assert exporter.flush(600), "the exporter did not catch up"
    run.close()
    return elapsed, cpu


def columns(n: int, key: str = "loss") -> dict[str, tuple[array, array, array]]:
    now = time.time()
    return {key: (array("q", range(1, n + 1)), array("d", (now + i * 1e-3 for i in range(n))),
                  array("d", (1.0 / (i + 1) for i in range(n))))}


def exporter_rate(root: Path, exporter: Exporter, n: int) -> float:
    run = Run.create(root, config={"lr": 0.1})
    run.add_exporter(exporter)
    assert exporter.flush(120), "the exporter did not connect"
    data = columns(n)
    t0 = time.perf_counter()
    run.log_columns(data)
    run.flush()
    assert exporter.flush(600), "the exporter did not catch up"
    rate = n / (time.perf_counter() - t0)
    run.close()
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


def mlflow_run(uri: str) -> tuple[object, str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("bench") or client.get_experiment(
        client.create_experiment("bench"))
    return client, client.create_run(exp.experiment_id).info.run_id


def log_metric_rate(uri: str, n: int) -> float:
    client, run_id = mlflow_run(uri)
    t0 = time.perf_counter()
    for i in range(n):
        client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i + 1)  # type: ignore[attr-defined]
    return n / (time.perf_counter() - t0)


def log_batch_rate(uri: str, n: int) -> float:
    from mlflow.entities import Metric

    client, run_id = mlflow_run(uri)
    now = int(time.time() * 1000)
    metrics = [Metric("loss", 1.0 / (i + 1), now + i, i + 1) for i in range(n)]
    t0 = time.perf_counter()
    for j in range(0, n, 1000):
        client.log_batch(run_id, metrics=metrics[j:j + 1000])  # type: ignore[attr-defined]
    return n / (time.perf_counter() - t0)


def gauge_rate(n: int) -> float:
    import prometheus_client

    registry = prometheus_client.CollectorRegistry()
    gauge = prometheus_client.Gauge("loss", "loss", ["run"], registry=registry)
    t0 = time.perf_counter()
    for i in range(n):
        gauge.labels("bench").set(1.0 / (i + 1))
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = arguments(__doc__, rounds=5)
    parser.add_argument("--steps", type=int, default=None, help="loop steps (10,000; quick 3,000)")
    parser.add_argument("--work", type=int, default=2000,
                        help="Python loop iterations of work per step (2,000: ~85 us here)")
    parser.add_argument("--points", type=int, default=None,
                        help="points per throughput round (100,000; quick 20,000)")
    args = parser.parse_args()
    rounds = rounds_of(args)
    steps = args.steps or (3000 if args.quick else 10_000)
    points = args.points or (20_000 if args.quick else 100_000)
    single = max(50, points // 500)  # log_metric: ~20 ms per call on a small VM
    tmp = Path(tempfile.mkdtemp(prefix="bench-exporters-"))
    os.chdir(tmp)  # MLflow's default artifact folder (./mlruns) and anything relative go there
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    counter = iter(range(1_000_000))

    def folder() -> Path:
        return tmp / f"r{next(counter)}"

    makers: dict[str, Make] = {
        "no exporter": lambda root: None,
        "TensorBoardExporter (its own process, the default)":
            lambda root: TensorBoardExporter(root / "tb"),
        "MLflowExporter, sqlite:/// (its own process, the default)":
            lambda root: MLflowExporter(uri, experiment="bench-loop"),
        "PrometheusExporter (endpoint in the training process)":
            lambda root: PrometheusExporter(port=0),
        "TensorBoardExporter, delivery='thread'":
            lambda root: TensorBoardExporter(root / "tb", delivery="thread"),
        "MLflowExporter, sqlite:///, delivery='thread'":
            lambda root: MLflowExporter(uri, experiment="bench-loop", delivery="thread"),
    }
    loop_seconds(folder(), 500, makers["MLflowExporter, sqlite:/// (its own process, the "
                                      "default)"], 0)  # MLflow's schema, imports
    t0 = time.perf_counter()
    busy(args.work * 1000)
    work_us = (time.perf_counter() - t0) / 1000 * 1e6
    samples = interleaved({name: (lambda m=make: loop_seconds(folder(), steps, m, args.work))
                           for name, make in makers.items()}, rounds=rounds, progress=True)
    what = (f"{steps:,} steps of ~{work_us:.0f} us of Python work, 3 metrics per step, "
            f"{rounds} interleaved rounds, one process")
    step = Table("exporters_step", f"Per-step wall time with exporters attached ({what})",
                 "us/step", baseline="no exporter", ratio_label="x no exporter")
    cpu = Table("exporters_cpu", f"CPU time of the training process per step ({what})",
                "us/step", baseline="no exporter", ratio_label="x no exporter")
    for table, index in ((step, 0), (cpu, 1)):
        base = [s[index] / steps * 1e6 for s in samples["no exporter"]]
        for name, pairs in samples.items():
            per = [s[index] / steps * 1e6 for s in pairs]
            added = sorted(p - b for p, b in zip(per, base))[len(per) // 2]
            note = "" if name == "no exporter" else (
                f"{added:+.1f} us/step; best round {min(per):.1f} us "
                f"({min(per) / min(base):.2f}x the best without)")
            table.add(name, per, note=note)
    step.notes.append(f"the step's own work: {work_us:.0f} us of Python (busy loop) + "
                      "TrainingMonitor.log of 3 floats")
    cpu.notes.append("time.process_time() over the same loops: every thread of the training "
                     "process (not the delivery process); unlike the wall time it does not "
                     "count waiting for a core, so other jobs on the machine hardly move it")

    rate = Table("exporters_rate", f"Points per second delivered to the backend ({points:,} "
                 f"points of one series; log_metric: {single:,}; {rounds} interleaved rounds)",
                 "points/s", ratio_label="x the backend's usual client")
    rate_samples = interleaved({
        "sw": lambda: summary_writer_rate(folder(), points),
        "tb": lambda: exporter_rate(folder(), TensorBoardExporter(folder()), points),
        "metric": lambda: log_metric_rate(uri, single),
        "batch": lambda: log_batch_rate(uri, points),
        "mlflow": lambda: exporter_rate(folder(), MLflowExporter(uri, experiment="bench-rate"),
                                        points),
        "gauge": lambda: gauge_rate(points),
        "prom": lambda: exporter_rate(folder(), PrometheusExporter(port=0), points),
    }, rounds=rounds, progress=True)
    r = rate_samples
    rate.add("SummaryWriter.add_scalar per scalar, then flush() (usual client)", r["sw"])
    rate.add("TensorBoardExporter: from the record, by its process", r["tb"], baseline=r["sw"],
             note="x SummaryWriter.add_scalar")
    rate.add("MlflowClient.log_metric per scalar, sqlite:/// (usual client)", r["metric"])
    rate.add("MlflowClient.log_batch by hand, 1,000 per call", r["batch"], baseline=r["metric"],
             note="x log_metric")
    rate.add("MLflowExporter: from the record, log_batch by its process", r["mlflow"],
             baseline=r["metric"], note="x log_metric")
    rate.add("prometheus_client Gauge.labels(...).set per scalar (usual client)", r["gauge"])
    rate.add("PrometheusExporter: latest value per series, in process", r["prom"],
             baseline=r["gauge"], note="x Gauge.set")
    rate.notes.append("an exporter's time runs from run.log_columns() until exporter.flush() "
                      "returns: the store's commit, the record read back, the delivery")
    emit([step, cpu, rate], args)


if __name__ == "__main__":
    main()
