"""Scalars logged per second, to disk, and the cost on the calling thread: the run store
(Run.log_scalars, Run.log_columns, TrainingMonitor) against csv.writer, TensorBoard's
SummaryWriter.add_scalar and MLflow's log_metric / log_batch (sqlite:/// backend); one process,
the writers interleaved (one of each per round).

Each writer logs rows of 10 keys. Sustained = scalars / (time until they are on disk: fsync for
csv, close for TensorBoard and the run; MLflow's calls are synchronous). MLflow writes far fewer
scalars per round (each log_metric is a SQLite transaction) and TensorBoard fewer than the
others; per-scalar rates make them comparable.

Run: .venv/bin/python bench/bench_store.py [--quick]
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Table, arguments, emit, interleaved, rounds_of
from loopwise import TrainingMonitor
from loopwise.record import Run

KEYS = [f"metric_{i}" for i in range(10)]
Result = tuple[float, float, int]  # calling-thread seconds, seconds until on disk, scalars


def csv_writer(root: str, steps: int) -> Result:
    t0 = time.perf_counter()
    with open(os.path.join(root, "rows.csv"), "w", newline="") as fh:
        writer = csv.writer(fh)
        for step in range(steps):
            now = time.time()
            for key in KEYS:
                writer.writerow((key, step, now, 0.5))
        calling = time.perf_counter() - t0
        fh.flush()
        os.fsync(fh.fileno())
    return calling, time.perf_counter() - t0, steps * len(KEYS)


def log_scalars(root: str, steps: int) -> Result:
    run = Run.create(root)
    values = dict.fromkeys(KEYS, 0.5)
    t0 = time.perf_counter()
    for step in range(steps):
        run.log_scalars(values, step=step)
    calling = time.perf_counter() - t0
    run.close()
    return calling, time.perf_counter() - t0, steps * len(KEYS)


def log_columns(root: str, steps: int) -> Result:
    """Columns handed over every 1,000 steps (what TrainingMonitor does at each refresh)."""
    run = Run.create(root)
    t0 = time.perf_counter()
    now = time.time()
    for start in range(0, steps, 1000):
        idx = list(range(start, start + 1000))
        times = [now] * 1000
        run.log_columns({k: (idx, times, [0.5] * 1000) for k in KEYS})
    calling = time.perf_counter() - t0
    run.close()
    return calling, time.perf_counter() - t0, steps * len(KEYS)


def monitor(root: str, steps: int) -> Result:
    """TrainingMonitor.log() with the 10 keys every step, into its run record."""
    run = Run.create(root)
    m = TrainingMonitor(range(steps), file=io.StringIO(), run=run, system=False)
    values = dict.fromkeys(KEYS, 0.5)
    t0 = time.perf_counter()
    for _ in m:
        m.log(values)
    calling = time.perf_counter() - t0
    run.close()
    return calling, time.perf_counter() - t0, steps * len(KEYS)


def tensorboard(root: str, steps: int) -> Result:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(tempfile.mkdtemp(dir=root))
    t0 = time.perf_counter()
    for step in range(steps):
        for key in KEYS:
            writer.add_scalar(key, 0.5, step)
    calling = time.perf_counter() - t0
    writer.close()
    return calling, time.perf_counter() - t0, steps * len(KEYS)


class Mlflow:
    """One sqlite:/// tracking store for the whole script (its schema is made once, untimed)."""

    def __init__(self, root: str) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")
        self.experiment = self.client.create_experiment("bench")

    def log_metric(self, steps: int) -> Result:
        run_id = self.client.create_run(self.experiment).info.run_id
        log = self.client.log_metric
        t0 = time.perf_counter()
        for step in range(steps):
            now = int(time.time() * 1000)
            for key in KEYS:
                log(run_id, key, 0.5, timestamp=now, step=step)
        elapsed = time.perf_counter() - t0
        self.client.set_terminated(run_id)
        return elapsed, elapsed, steps * len(KEYS)

    def log_batch(self, steps: int) -> Result:
        from mlflow.entities import Metric

        run_id = self.client.create_run(self.experiment).info.run_id
        t0 = time.perf_counter()
        for start in range(0, steps, 100):  # 1,000 metrics per call: MLflow's limit
            now = int(time.time() * 1000)
            batch = [Metric(key, 0.5, now, step) for step in range(start, start + 100)
                     for key in KEYS]
            self.client.log_batch(run_id, metrics=batch)
        elapsed = time.perf_counter() - t0
        self.client.set_terminated(run_id)
        return elapsed, elapsed, steps * len(KEYS)


def main() -> None:
    args = arguments(__doc__, rounds=5)
    args = args.parse_args()
    rounds = rounds_of(args)
    big, tb, ml_metric, ml_batch = ((20_000, 2_000, 30, 500) if args.quick
                                    else (100_000, 10_000, 60, 2_000))
    with tempfile.TemporaryDirectory() as root:
        variants: dict[str, Callable[[], Result]] = {
            "csv.writer + fsync": lambda: csv_writer(root, big),
            "Run.log_scalars": lambda: log_scalars(root, big),
            "Run.log_columns (every 1,000 steps)": lambda: log_columns(root, big),
            "TrainingMonitor.log (run record)": lambda: monitor(root, big),
        }
        if importlib.util.find_spec("tensorboard") is not None:
            variants["TensorBoard SummaryWriter.add_scalar"] = lambda: tensorboard(root, tb)
        if importlib.util.find_spec("mlflow") is not None:
            mlflow = Mlflow(root)
            variants["MLflow log_metric (sqlite)"] = lambda: mlflow.log_metric(ml_metric)
            variants["MLflow log_batch (sqlite, 1,000 per call)"] = \
                lambda: mlflow.log_batch(ml_batch)
        samples = interleaved(variants, rounds=rounds)
    rate = Table("store_rate", f"Scalars logged per second, to disk ({rounds} interleaved "
                 "rounds, one process)", "scalars/s", baseline="csv.writer + fsync",
                 ratio_label="x csv.writer")
    call = Table("store_call", "Cost per scalar on the calling thread", "us/scalar",
                 baseline="csv.writer + fsync", ratio_label="x csv.writer")
    for name, results in samples.items():
        n = results[0][2]
        rate.add(name, [r[2] / r[1] for r in results], note=f"{n:,} scalars per round")
        call.add(name, [r[0] / r[2] * 1e6 for r in results])
    emit([rate, call], args)


if __name__ == "__main__":
    main()
