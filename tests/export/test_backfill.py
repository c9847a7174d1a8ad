"""Backfill: a run recorded with no exporter, mirrored after the fact (``loopwise export RUN
--to ...``), lines up with a live mirror; bad requests get clear errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time

import pytest
from _export_servers import need

from loopwise import TrainingMonitor
from loopwise.cli import main
from loopwise.export.backfill import backfill
from loopwise.export.tensorboard import TensorBoardExporter
from loopwise.record import Run, RunReader

need("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402


def _record(run: Run) -> None:
    monitor = TrainingMonitor(range(60), run=run, file=io.StringIO(), system=False,
                              health=False)
    for i in monitor:
        monitor.log({"loss": 1.0 / (i + 1)})
    run.log_epoch(1, {"loss": 0.2, "val_loss": 0.3})
    run.log_system({"cpu_pct": 40.0}, wall_time=1_800_000_000.0)
    run.log_event("checkpoint_saved", "saved the best weights")
    run.log_event("health.spike", "loss spiked", level="warning", data={"step": 12})


def _scalars(folder) -> dict:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]
            } | {"_text": {t: [e.step for e in acc.Tensors(t)] for t in acc.Tags()["tensors"]},
                 "_acc": acc}


def test_a_backfill_lines_up_with_the_live_mirror(tmp_path):
    run = Run.create(tmp_path / "runs", config={"lr": 0.1})
    run.add_exporter(TensorBoardExporter(tmp_path / "live"))
    _record(run)
    run.close()
    assert main(["export", str(run.path), "--to", "tensorboard", str(tmp_path / "later")]) == 0
    live, later = _scalars(tmp_path / "live"), _scalars(tmp_path / "later")
    for tag in ("loss", "epoch", "epoch/loss", "epoch/val_loss", "system/cpu_pct"):
        assert later[tag] == live[tag], tag
    assert later["_text"]["events/health.spike"] == [12]
    assert later["_text"]["events/checkpoint_saved"] == [60]  # the step it happened at


def test_a_crashed_run_is_backfilled_with_its_status(tmp_path):
    child = textwrap.dedent("""
        import os, sys
        from loopwise.record import Run
        run = Run.create(sys.argv[1], name="dies")
        for step in range(1, 21):
            run.advance()
            run.log_scalars({"loss": float(step)}, step=step)
        run.flush()
        os._exit(9)
    """)
    subprocess.run([sys.executable, "-c", child, str(tmp_path / "runs")], check=False,
                   timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    path = tmp_path / "runs" / "dies"
    assert RunReader(path).status == "crashed"
    stats = backfill(path, TensorBoardExporter(tmp_path / "tb"))
    assert stats.delivered == 20 and stats.undelivered == 0
    got = _scalars(tmp_path / "tb")
    assert got["loss"][-1] == (20, 20.0)
    content = got["_acc"].PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["status"].string_value == "crashed"


def test_bad_export_requests_say_what_to_do(tmp_path, capsys):
    run = Run.create(tmp_path / "runs")
    run.log_scalars({"loss": 1.0}, step=1)
    with pytest.raises(ValueError, match="is still running; mirror it live"):
        backfill(run.path, TensorBoardExporter(tmp_path / "tb"))
    run.close()
    with pytest.raises(TypeError, match="exporter must be a loopwise exporter"):
        backfill(run.path, object())  # type: ignore[arg-type]
    cases = [
        (["--to", "wandb", "x"], "--to takes one of tensorboard, mlflow"),
        (["out.csv", "--to", "tensorboard", "tb"], "give either OUTPUT/--format (a file) or --to"),
        (["--format", "jsonl", "--to", "tensorboard", "tb"], "give either OUTPUT/--format"),
        (["--to", "tensorboard", "tb", "--experiment", "e"], "--experiment goes with --to "
                                                             "mlflow"),
    ]
    for extra, message in cases:
        assert main(["export", str(run.path), *extra]) == 2
        assert message in capsys.readouterr().err
    assert main(["export", str(run.path), str(tmp_path / "out.csv")]) == 0  # CSV as before
    assert (tmp_path / "out.csv").read_text().startswith("step")
    assert main(["export", str(tmp_path / "nope"), "--to", "tensorboard", "tb"]) == 2
    assert "not a loopwise run folder" in capsys.readouterr().err


def test_a_target_that_cannot_be_written_fails_fast_with_one_line(tmp_path, capsys):
    run = Run.create(tmp_path / "runs")
    run.log_scalars({"loss": 1.0}, step=1)
    run.close()
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"TensorBoardExporter could not reach tensorboard "
                                              r"within 1 s: FileNotFoundError: .*/proc/x"):
        backfill(run.path, TensorBoardExporter("/proc/x"), connect_timeout=1)
    assert time.monotonic() - start < 10
    start = time.monotonic()
    assert main(["export", str(run.path), "--to", "tensorboard", "/proc/x"]) == 2
    assert time.monotonic() - start <= 30
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not reach tensorboard within 20 s" in err


def test_a_backfill_leaves_out_a_damaged_series_and_says_so(tmp_path, capsys):
    import struct

    with Run.create(tmp_path / "runs", "d") as run:
        for step in range(1, 101):
            run.log_scalars({"loss": 1.0 / step, "acc": step / 100}, step=step)
    store = run.path / "store.sqlite"
    data = bytearray(store.read_bytes())
    data[data.find(struct.pack("<d", 1.0 / 7)) + 1] ^= 0x02
    store.write_bytes(bytes(data))
    assert main(["export", str(run.path), "--to", "tensorboard", str(tmp_path / "tb")]) == 0
    said = f"{store} is corrupt (run 'd': series 'loss' failed its checksum)"
    assert f"loopwise export: left out: {said}" in capsys.readouterr().err
    got = _scalars(tmp_path / "tb")
    assert "loss" not in got and len(got["acc"]) == 100
    assert got["_text"]["events/record_damaged"]  # the mirror says it too


def test_a_long_backfill_reads_back_in_tensorboard_with_every_point_exact(tmp_path):
    """Past the exporter's blocks of events (50,000 points), across the step varint's byte
    boundaries (127/128, 16383/16384), with series sharing events and series apart, and the
    values float32 cannot hold: what TensorBoard's own reader (checksums checked) gives back is
    each logged point, at its step and wall time, as float32."""
    import math
    from array import array

    import numpy as np

    n, t0 = 60_000, 1_800_000_000.0
    special = [float("nan"), float("inf"), -float("inf"), 1e39, -1e39, -0.0, 1e-45, 3.4e38]
    steps = array("q", range(1, n + 1))
    times = array("d", (t0 + i * 1e-3 for i in range(n)))
    loss = array("d", (special[i // 1000 % 8] if i % 1000 == 0 else 1.0 / (i + 1)
                       for i in range(n)))
    sparse = slice(0, n, 7)  # logged with loss: the same events
    acc = (steps[sparse], times[sparse], array("d", (i / n for i in range(0, n, 7))))
    lr = (steps, array("d", (t + 0.5e-3 for t in times)), array("d", (0.1,) * n))  # apart
    with Run.create(tmp_path / "runs", "long") as run:
        run.log_columns({"loss": (steps, times, loss), "acc": acc, "lr": lr})
    assert main(["export", str(run.path), "--to", "tensorboard", str(tmp_path / "tb")]) == 0
    got = _scalars(tmp_path / "tb")["_acc"]
    for tag, (s, t, v) in {"loss": (steps, times, loss), "acc": acc, "lr": lr}.items():
        events = got.Scalars(tag)
        assert [e.step for e in events] == list(s), tag
        assert [e.wall_time for e in events] == list(t), tag
        with np.errstate(over="ignore"):
            want = [float(x) for x in np.asarray(v).astype(np.float32)]
        assert all(e.value == w or (math.isnan(e.value) and math.isnan(w))
                   for e, w in zip(events, want, strict=True)), tag
    assert got.Scalars("loss")[3000].value == float("inf")  # 1e39: beyond float32
