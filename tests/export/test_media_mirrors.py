"""The record's histograms, images and text in the mirrors: TensorBoard (live, both deliveries,
and a backfill; read back with TensorBoard's EventAccumulator), MLflow (live and a backfill,
read back from a real ``mlflow server``) and ``loopwise export --format jsonl``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _export_servers import binary, free_port, need, start, stop, wait_http

from loopwise.cli import main
from loopwise.export.mlflow import MLflowExporter, artifact_name
from loopwise.export.tensorboard import TensorBoardExporter
from loopwise.record import Run, RunReader
from loopwise.record.png import encode_png

need("tensorboard")
need("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

PIXELS = np.full((6, 8, 3), (10, 200, 30), np.uint8)


def record_media(run: Run) -> None:
    run.log_histogram("weights/fc", np.arange(10.0), step=3, bins=5)
    run.log_histogram("weights/fc", np.arange(10.0) * 2, step=7, bins=5)
    run.log_image("pred vs actual", PIXELS, step=7)
    run.log_text("table", "feature | importance\nx1 | 0.4", step=7)


def read_tb(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"histograms": 0, "images": 0,
                                                       "tensors": 0, "scalars": 0})
    acc.Reload()
    return acc


def check_tb(acc: EventAccumulator) -> None:
    hist = acc.Histograms("weights/fc")
    assert [h.step for h in hist] == [3, 7]
    first = hist[0].histogram_value
    assert (first.min, first.max, first.num, first.sum) == (0.0, 9.0, 10, 45.0)
    assert list(first.bucket) == [2.0] * 5
    assert list(first.bucket_limit) == pytest.approx([1.8, 3.6, 5.4, 7.2, 9.0])
    (image,) = acc.Images("pred vs actual")
    assert (image.step, image.width, image.height) == (7, 8, 6)
    assert image.encoded_image_string == encode_png(PIXELS)
    (text,) = acc.Tensors("table")
    assert text.step == 7 and text.tensor_proto.string_val[0] == b"feature | importance\nx1 | 0.4"


@pytest.mark.parametrize("delivery", ["process", "thread"])
def test_tensorboard_mirrors_histograms_images_and_text_live(tmp_path: Path,
                                                             delivery: str) -> None:
    with Run.create(tmp_path / "runs") as run:
        run.add_exporter(TensorBoardExporter(tmp_path / "tb", delivery=delivery))
        record_media(run)
    check_tb(read_tb(tmp_path / "tb"))


def test_log_histograms_and_log_figure_record_into_the_run(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    model(torch.randn(4, 3)).sum().backward()
    (tmp_path / "fig.png").write_bytes(encode_png(PIXELS))
    with Run.create(tmp_path / "runs") as run:
        tb = TensorBoardExporter(tmp_path / "tb")
        run.add_exporter(tb)
        assert tb.log_histograms(model, step=5)
        tb.log_figure("fig", tmp_path / "fig.png", step=5)
    reader = RunReader(run.path)
    assert reader.histogram_names() == ["weights/weight", "grads/weight", "weights/bias",
                                        "grads/bias"]
    assert reader.images("fig")[0].step == 5
    acc = read_tb(tmp_path / "tb")
    assert [h.step for h in acc.Histograms("grads/bias")] == [5]
    assert acc.Images("fig")[0].encoded_image_string == encode_png(PIXELS)


def test_a_tensorboard_backfill_and_jsonl_export_include_them(tmp_path: Path) -> None:
    with Run.create(tmp_path / "runs") as run:
        run.log_scalars({"loss": 0.5}, step=3)
        record_media(run)
    assert main(["export", str(run.path), "--to", "tensorboard", str(tmp_path / "tb")]) == 0
    check_tb(read_tb(tmp_path / "tb"))
    assert main(["export", str(run.path), str(tmp_path / "run.jsonl"),
                 "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert rows[0] == {"step": 3, "wall_time": rows[0]["wall_time"], "loss": 0.5}
    assert rows[1]["step"] == 3 and rows[1]["histogram"]["counts"] == [2, 2, 2, 2, 2]
    assert rows[1]["histogram"]["edges"] == pytest.approx([0, 1.8, 3.6, 5.4, 7.2, 9.0])
    kinds = [next(k for k in r if k not in ("step", "wall_time")) for r in rows[2:]]
    assert kinds == ["histogram", "image", "text"] and all(r["step"] == 7 for r in rows[2:])
    image = rows[3]["image"]
    assert (run.path / image["path"]).read_bytes() == encode_png(PIXELS)
    assert rows[4]["text"] == {"name": "table", "text": "feature | importance\nx1 | 0.4"}


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("mlflow-media")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    proc = start([binary("mlflow"), "server", "--backend-store-uri",
                  f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination",
                  str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
                  "--workers", "1"], root / "server.log", env={"MLFLOW_DISABLE_TELEMETRY": "true"})
    try:
        wait_http(f"{uri}/health", proc, root / "server.log", timeout=180)
        yield uri
    finally:
        stop(proc)


def check_mlflow(uri: str, run_id: str, tmp_path: Path) -> None:
    client = MlflowClient(uri)
    hists = [a.path for a in client.list_artifacts(run_id, "histograms/weights/fc")]
    assert hists == ["histograms/weights/fc/step_000000003.json",
                     "histograms/weights/fc/step_000000007.json"]
    body = json.loads(Path(client.download_artifacts(run_id, hists[1], str(tmp_path))).read_text())
    assert body["step"] == 7 and body["counts"] == [2] * 5 and body["hi"] == 18.0
    (png,) = client.list_artifacts(run_id, "images/pred vs actual")
    assert png.path == "images/pred vs actual/step_000000007.png"
    got = Path(client.download_artifacts(run_id, png.path, str(tmp_path)))
    assert got.read_bytes() == encode_png(PIXELS)
    (text,) = client.list_artifacts(run_id, "texts/table")
    assert Path(client.download_artifacts(run_id, text.path, str(tmp_path))).read_text() == (
        "feature | importance\nx1 | 0.4")


def test_mlflow_uploads_them_live_and_in_a_backfill(tmp_path: Path, mlflow_server: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    exporter = MLflowExporter(mlflow_server, experiment="media", close_timeout=120)
    with Run.create(tmp_path / "runs", "live") as run:
        run.add_exporter(exporter)
        record_media(run)
    assert exporter.run_id is not None
    check_mlflow(mlflow_server, exporter.run_id, tmp_path / "live")
    with Run.create(tmp_path / "runs", "later") as later:
        record_media(later)
    assert main(["export", str(later.path), "--to", "mlflow", mlflow_server,
                 "--experiment", "media-backfill"]) == 0
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("media-backfill")
    (found,) = client.search_runs([exp.experiment_id])
    (tmp_path / "later-dl").mkdir()
    check_mlflow(mlflow_server, found.info.run_id, tmp_path / "later-dl")


def test_artifact_names_keep_folders_and_lose_what_mlflow_refuses() -> None:
    assert artifact_name("weights/fc1.weight") == "weights/fc1.weight"
    assert artifact_name("../a//b:c") == "a/b_c"
    assert artifact_name("..") == "_"
