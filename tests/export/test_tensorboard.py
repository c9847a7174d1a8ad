"""TensorBoard exporter: event files read back with TensorBoard's own EventAccumulator, and one
real ``tensorboard`` server answering over HTTP."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

import pytest
import torch
from _export_servers import binary, free_port, get, need, start, stop, wait_http

from loopwise import TrainingMonitor
from loopwise.export.tensorboard import TensorBoardExporter
from loopwise.record import Run, RunReader

need("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402


def _read(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0,
                                                       "histograms": 0, "images": 0})
    acc.Reload()
    return acc


def _train(run: Run, steps: int = 40) -> None:
    monitor = TrainingMonitor(range(steps), run=run, file=io.StringIO(), system=False)
    for i in monitor:
        monitor.log({"loss": 1.0 / (i + 1), "accuracy": i / steps})
    run.log_epoch(1, {"loss": 0.2, "val_loss": 0.3, "lr": 0.01})
    run.log_scalars({"lr": 0.01}, step=run.global_step)


def test_series_keep_the_record_names_steps_and_wall_times(tmp_path):
    run = Run.create(tmp_path / "runs", config={"lr": 0.01, "model": {"width": 64}})
    tb = TensorBoardExporter(tmp_path / "tb")
    run.add_exporter(tb)
    _train(run)
    run.log_system({"cpu_pct": 40.0, "gpu0_temp_c": 61.0}, wall_time=1_800_000_000.0)
    run.log_system({"cpu_pct": 45.0, "gpu0_temp_c": 62.0}, wall_time=1_800_000_002.0)
    run.log_event("health.spike", "loss spiked at step 7", level="warning", data={"step": 7})
    run.close()

    acc = _read(tmp_path / "tb")
    scalars = set(acc.Tags()["scalars"])
    assert {"loss", "accuracy", "epoch", "epoch/loss", "epoch/val_loss", "epoch/lr", "lr",
            "system/cpu_pct", "system/gpu0_temp_c"} <= scalars
    loss = acc.Scalars("loss")
    assert [e.step for e in loss] == list(range(1, 41))
    assert loss[0].value == pytest.approx(1.0) and loss[-1].value == pytest.approx(1 / 40)
    assert [(e.step, e.value) for e in acc.Scalars("epoch/val_loss")] == [
        (40, pytest.approx(0.3))]
    cpu = acc.Scalars("system/cpu_pct")
    assert [(e.step, e.wall_time, e.value) for e in cpu] == [
        (0, 1_800_000_000.0, 40.0), (1, 1_800_000_002.0, 45.0)]
    text = acc.Tensors("events/health.spike")
    assert text[0].step == 7
    assert b"loss spiked at step 7" in text[0].tensor_proto.string_val[0]


def test_hparams_hold_the_flattened_config_and_the_final_metrics(tmp_path):
    run = Run.create(tmp_path / "runs", config={"lr": 0.01, "model": {"width": 64},
                                                "layers": [1, 2]})
    run.add_exporter(TensorBoardExporter(tmp_path / "tb"))
    _train(run)
    run.close()
    content = _read(tmp_path / "tb").PluginTagToContent("hparams")
    start_info = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert start_info.hparams["lr"].number_value == pytest.approx(0.01)
    assert start_info.hparams["model.width"].number_value == 64
    assert start_info.hparams["layers"].string_value == "[1, 2]"
    assert start_info.hparams["status"].string_value == "finished"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]).experiment
    tags = {m.name.tag for m in experiment.metric_infos}
    assert {"epoch/loss", "epoch/val_loss"} <= tags


def test_histograms_every_n_epochs_graph_and_prediction_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from loopwise.view.plots import render_predictions

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    x = torch.randn(16, 3)
    model(x).pow(2).mean().backward()
    run = Run.create(tmp_path / "runs")
    tb = TensorBoardExporter(tmp_path / "tb", histogram_every=2)
    run.add_exporter(tb)
    wrote = [tb.log_histograms(model, step=10 * e, epoch=e) for e in range(1, 5)]
    assert wrote == [False, True, False, True]
    tb.log_graph(model, x)
    png = render_predictions(model(x).detach(), torch.randn(16, 1), 1, out_dir=tmp_path)
    tb.log_figure("predictions", png, step=40)
    run.close()
    acc = _read(tmp_path / "tb")
    hist = acc.Tags()["histograms"]  # recorded in the run, written from the record
    assert "weights/0.weight" in hist and "grads/2.bias" in hist
    assert [e.step for e in acc.Histograms("weights/0.weight")] == [20, 40]
    assert [p.step for p in RunReader(run.path).histograms("weights/0.weight")] == [20, 40]
    assert acc.Tags()["graph"] is True
    image = acc.Images("predictions")[0]
    assert image.step == 40 and image.width > 100
    assert image.encoded_image_string == png.read_bytes()


def test_helpers_refuse_bad_input_with_clear_messages(tmp_path):
    tb = TensorBoardExporter(tmp_path / "tb")
    with pytest.raises(TypeError, match="log_histograms\\(\\) takes a torch.nn.Module"):
        tb.log_histograms(object(), step=1)
    with pytest.raises(ValueError, match="tag must be a non-empty string"):
        tb.log_figure("", tmp_path / "x.png", step=1)
    (tmp_path / "x.txt").write_text("not an image")
    with pytest.raises(ValueError, match="'fig' is not a PNG image"):
        tb.log_figure("fig", tmp_path / "x.txt", step=1)
    with pytest.raises(ValueError, match="histogram_every must be an int >= 1"):
        TensorBoardExporter(tmp_path, histogram_every=0)
    with pytest.raises(ValueError, match="given no log_dir and is attached to no run"):
        _ = TensorBoardExporter().log_dir
    tb.close()


def test_default_folder_is_inside_the_run(tmp_path):
    run = Run.create(tmp_path / "runs")
    tb = TensorBoardExporter()
    run.add_exporter(tb)
    run.log_scalars({"loss": 0.5}, step=1)
    run.close()
    assert tb.log_dir == run.path / "tensorboard"
    assert _read(run.path / "tensorboard").Scalars("loss")[0].value == 0.5


def test_without_the_extra_the_error_names_the_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "tensorboard.compat.proto", None)
    with pytest.raises(ImportError, match=r"pip install 'loopwise\[tensorboard\]'"):
        TensorBoardExporter("tb")


def test_a_real_tensorboard_server_serves_the_loss(tmp_path):
    exe = binary("tensorboard")
    run = Run.create(tmp_path / "runs")
    run.add_exporter(TensorBoardExporter(tmp_path / "logs" / run.name))
    _train(run)
    run.close()
    port = free_port()
    log = tmp_path / "tensorboard.log"
    proc = start([exe, "--logdir", str(tmp_path / "logs"), "--host", "127.0.0.1", "--port",
                  str(port), "--load_fast=false", "--reload_interval=1"], log)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            wait_http(f"{base}/data/runs", proc, log, timeout=180)
            if run.name in json.loads(get(f"{base}/data/runs")):
                break
            time.sleep(0.5)
        points = json.loads(get(f"{base}/data/plugin/scalars/scalars?run={run.name}&tag=loss"))
        assert [p[1] for p in points] == list(range(1, 41))
        assert points[-1][2] == pytest.approx(1 / 40)
    finally:
        stop(proc)


def test_record_checksums_match_tensorboards_own():
    import random

    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    from loopwise.export.tfrecord import RecordFramer

    rng = random.Random(7)
    blobs = [bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 8, 8, 31, 40, 40])))
             for _ in range(200)]
    assert RecordFramer().masked_crcs(blobs) == [masked_crc32c(b) for b in blobs]


def test_hand_encoded_scalar_events_parse_as_tensorboard_events():
    from tensorboard.compat.proto import event_pb2

    from loopwise.export.tfrecord import scalar_event, scalar_prefix

    blob = scalar_event(1_800_000_000.25, 300, [(scalar_prefix("loss"), 0.5),
                                                (scalar_prefix("épоch/val"), 1e39),
                                                (scalar_prefix("x" * 200), float("nan"))])
    event = event_pb2.Event.FromString(blob)
    assert (event.wall_time, event.step) == (1_800_000_000.25, 300)
    values = event.summary.value
    assert [v.tag for v in values] == ["loss", "épоch/val", "x" * 200]
    assert values[0].simple_value == 0.5 and values[1].simple_value == float("inf")
    assert values[2].simple_value != values[2].simple_value  # NaN


def test_delivery_runs_in_a_process_of_its_own_or_a_thread_when_asked(tmp_path):
    from loopwise.record.provenance import pid_alive

    written = {}
    for delivery in ("process", "thread"):
        run = Run.create(tmp_path / "runs", config={"lr": 0.1})
        tb = TensorBoardExporter(tmp_path / delivery, delivery=delivery)
        run.add_exporter(tb)
        pid = tb.pid
        _train(run)
        run.close()
        written[delivery] = [(e.step, e.value) for e in _read(tmp_path / delivery).Scalars("loss")]
        if delivery == "process":
            assert pid is not None and pid != os.getpid()
            assert not pid_alive(pid, None)  # gone once the run is closed
        else:
            assert pid is None
    assert written["process"] == written["thread"]
    assert [s for s, _ in written["process"]] == list(range(1, 41))
    with pytest.raises(ValueError, match="delivery must be 'process' .* or 'thread'"):
        TensorBoardExporter(tmp_path / "x", delivery="fork")
