"""Read a long scalar series back and downsample it to 2,000 points: loopwise's RunReader.series
+ downsample against MLflow's get_metric_history (sqlite:/// store) and TensorBoard's
EventAccumulator (size_guidance 0: every point), on the same series; one process, the readers
interleaved (one of each per round). Every reader opens the store afresh each round (what a
viewer does when it opens a run) and ends with the same min/max envelope of 2,000 points
(``loopwise.record.downsample``), so the difference is the read.

Writing points into MLflow costs ~0.2 ms each through log_batch here, and into TensorBoard
~40 us, so the peers get fewer points than loopwise's 1,000,000 (printed in each row) and each
is compared with loopwise reading the same number of points; every read here scales linearly
with the number of points.

Run: .venv/bin/python bench/bench_read.py [--quick]
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from array import array
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Table, arguments, emit, interleaved, rounds_of, timed
from loopwise.record import Run, RunReader
from loopwise.record.series import Series, downsample

POINTS = 2_000


def values(n: int) -> list[float]:
    return [1.0 / (1 + i) + (40.0 if i == n // 3 else 0.0) for i in range(n)]


def write_loopwise(root: str, n: int) -> str:
    run = Run.create(root, f"read-{n}")
    now = time.time()
    run.log_columns({"loss": (list(range(n)), [now + i * 1e-3 for i in range(n)], values(n))})
    run.close()
    return str(run.path)


def read_loopwise(path: str) -> None:
    series = RunReader(path).series("loss")
    assert len(downsample(series, POINTS)) <= POINTS


def _envelope(steps: list[int], times: list[float], vals: list[float]) -> None:
    series = Series("loss", array("q", steps), array("d", times), array("d", vals),
                    array("q", [0] * len(steps)))
    assert len(downsample(series, POINTS)) <= POINTS


def write_tensorboard(root: str, n: int) -> str:
    from torch.utils.tensorboard import SummaryWriter

    folder = os.path.join(root, "tb")
    writer = SummaryWriter(folder)
    for i, v in enumerate(values(n)):
        writer.add_scalar("loss", v, i)
    writer.close()
    return folder


def read_tensorboard(folder: str) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(folder, size_guidance={"scalars": 0})
    acc.Reload()
    events = acc.Scalars("loss")
    _envelope([e.step for e in events], [e.wall_time for e in events], [e.value for e in events])


def write_mlflow(root: str, n: int) -> tuple[str, str]:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("read")).info.run_id
    now = int(time.time() * 1000)
    vals = values(n)
    for start in range(0, n, 1000):
        client.log_batch(run_id, metrics=[Metric("loss", vals[i], now + i, i)
                                          for i in range(start, min(n, start + 1000))])
    client.set_terminated(run_id)
    return uri, run_id


def read_mlflow(uri: str, run_id: str) -> None:
    from mlflow.tracking import MlflowClient

    history = MlflowClient(tracking_uri=uri).get_metric_history(run_id, "loss")
    _envelope([m.step for m in history], [m.timestamp / 1000 for m in history],
              [m.value for m in history])


def main() -> None:
    args = arguments(__doc__, rounds=5).parse_args()
    rounds = rounds_of(args)
    n_lw, n_tb, n_ml = (200_000, 20_000, 20_000) if args.quick else (1_000_000, 200_000, 100_000)
    with tempfile.TemporaryDirectory() as root:
        print(f"writing {n_lw:,} points (loopwise), {n_tb:,} (TensorBoard), {n_ml:,} (MLflow)",
              flush=True)
        variants: dict[str, Callable[[], float]] = {}
        sizes: dict[str, int] = {}
        lw = {n: write_loopwise(root, n) for n in sorted({n_lw, n_tb, n_ml})}
        for n, path in lw.items():
            name = f"loopwise RunReader.series + downsample, {n:,} points"
            variants[name] = timed(lambda path=path: read_loopwise(path))
            sizes[name] = n
        if importlib.util.find_spec("tensorboard") is not None:
            folder = write_tensorboard(root, n_tb)
            name = f"TensorBoard EventAccumulator, {n_tb:,} points"
            variants[name] = timed(lambda: read_tensorboard(folder))
            sizes[name] = n_tb
        if importlib.util.find_spec("mlflow") is not None:
            uri, run_id = write_mlflow(root, n_ml)
            name = f"MLflow get_metric_history (sqlite), {n_ml:,} points"
            variants[name] = timed(lambda: read_mlflow(uri, run_id))
            sizes[name] = n_ml
        samples = interleaved(variants, rounds=rounds)
    table = Table("read", f"Read a series and downsample it to {POINTS:,} points ({rounds} "
                  "interleaved rounds, one process)", "ms",
                  ratio_label="x slower than loopwise, same points")
    base = {n: samples[f"loopwise RunReader.series + downsample, {n:,} points"] for n in lw}
    for name, secs in samples.items():
        n = sizes[name]
        per_m = sorted(s / n * 1e6 for s in secs)[len(secs) // 2]
        table.add(name, [s * 1e3 for s in secs], baseline=None if name.startswith("loopwise")
                  else [b * 1e3 for b in base[n]],
                  note=f"{per_m:,.2f} s per million points")
    emit([table], args)


if __name__ == "__main__":
    main()
