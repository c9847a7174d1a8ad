"""MLflow exporter against a ``sqlite:///`` store and a real ``mlflow server``, everything read
back through ``MlflowClient``."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from _export_servers import binary, free_port, need, start, stop, wait_http

from loopwise import TrainingMonitor
from loopwise.cli import main
from loopwise.export.mlflow import MLflowExporter, metric_name
from loopwise.record import Run, RunReader
from loopwise.record.provenance import pid_alive

need("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # our backoff does the retrying
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = root / "mlflow-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = start([binary("mlflow"), "server", "--backend-store-uri",
                           f"sqlite:///{self.root / 'mlflow.db'}", "--artifacts-destination",
                           str(self.root / "artifacts"), "--host", "127.0.0.1", "--port",
                           str(self.port), "--workers", "1"], self.log,
                          env={"MLFLOW_DISABLE_TELEMETRY": "true"})
        wait_http(f"{self.uri}/health", self.proc, self.log, timeout=180)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL (its process group) by PID: requests in flight are cut."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
            self.proc = None


def _mlflow_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's own HTTP settings as a user has them (7 retries with backoff, 120 s per call)."""
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = Server(tmp_path_factory.mktemp("mlflow-server"))
    srv.start()
    yield srv
    srv.stop()


def _train(run: Run, steps: int) -> None:
    monitor = TrainingMonitor(range(steps), run=run, file=io.StringIO(), system=False)
    for i in monitor:
        monitor.log({"loss": 1.0 / (i + 1)})


def test_sqlite_store_params_metrics_tags_artifacts_model_and_status(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = Run.create(tmp_path / "runs", config={
        "lr": 0.01, "model": {"width": 64, "act": "relu"}, "notes": "x" * 7000})
    (run.path / "model_best_model.pth").write_bytes(b"weights")
    (run.path / "model_loss_analysis.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    exporter = MLflowExporter(uri, experiment="toy", register_model="toy-model",
                              close_timeout=120)
    run.add_exporter(exporter)
    _train(run, 2500)  # 2,500 points: three log_batch calls of at most 1,000
    run.log_epoch(1, {"loss": 0.2, "val_loss": 0.3})
    run.log_system({"cpu_pct": 10.0}, wall_time=1_800_000_000.0)
    run.log_system({"cpu_pct": 20.0}, wall_time=1_800_000_002.0)
    run.log_event("health.spike", "loss spiked", level="warning", data={"step": 3})
    run.close()

    client = MlflowClient(uri)
    got = client.get_run(exporter.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.experiment_id == client.get_experiment_by_name("toy").experiment_id
    params = got.data.params
    assert params["lr"] == "0.01" and params["model.width"] == "64"
    assert params["model.act"] == "relu"
    assert len(params["notes"]) == 6000 and params["notes"].endswith("...")
    tags = got.data.tags
    assert tags["loopwise.status"] == "finished"
    assert tags["loopwise.run_id"] == run.id
    assert tags["loopwise.host"] == run.info["host"]
    assert tags["loopwise.health_events"] == "1"
    assert tags["loopwise.model_version"] == "toy-model/1"
    loss = client.get_metric_history(exporter.run_id, "loss")
    assert sorted(m.step for m in loss) == list(range(1, 2501))
    val = client.get_metric_history(exporter.run_id, "epoch/val_loss")
    assert [(m.step, m.value) for m in val] == [(2500, 0.3)]
    cpu = client.get_metric_history(exporter.run_id, "system/cpu_pct")
    assert sorted((m.step, m.timestamp, m.value) for m in cpu) == [
        (0, 1_800_000_000_000, 10.0), (1, 1_800_000_002_000, 20.0)]
    arts = {a.path for a in client.list_artifacts(exporter.run_id)}
    assert {"config.json", "model_best_model.pth", "model_loss_analysis.png",
            "loopwise"} <= arts
    version = client.get_model_version("toy-model", "1")
    assert version.run_id == exporter.run_id and version.source.endswith("model_best_model.pth")


def test_a_tracking_server_gets_failed_and_interrupted_runs(server, tmp_path):
    results = {}
    for status in ("failed", "interrupted"):
        run = Run.create(tmp_path / "runs", config={"status": status})
        exporter = MLflowExporter(server.uri, experiment="statuses", close_timeout=120)
        run.add_exporter(exporter)
        _train(run, 30)
        run.close(status, error="Traceback...\nValueError: boom" if status == "failed" else None)
        results[status] = MlflowClient(server.uri).get_run(exporter.run_id)
    assert results["failed"].info.status == "FAILED"
    assert results["failed"].data.tags["loopwise.error"].endswith("ValueError: boom")
    assert results["interrupted"].info.status == "KILLED"
    history = MlflowClient(server.uri).get_metric_history(results["failed"].info.run_id, "loss")
    assert len(history) == 30


def test_the_server_killed_mid_run_training_goes_on_every_metric_arrives_once(tmp_path,
                                                                              monkeypatch):
    _mlflow_defaults(monkeypatch)
    srv = Server(tmp_path)
    srv.start()
    try:
        run = Run.create(tmp_path / "runs")
        exporter = MLflowExporter(srv.uri, retry_initial=0.2, retry_max=1.0, close_timeout=120)
        run.add_exporter(exporter)
        _train(run, 200)
        run.flush()
        assert exporter.flush(120)
        srv.kill()
        _train(run, 300)  # training goes on while the server is down
        run.flush()
        deadline = time.monotonic() + 30
        while exporter.failures == 0 and time.monotonic() < deadline:
            threading.Event().wait(0.1)
        assert exporter.failures >= 1, "the outage was not seen within 30 s"
        assert run.global_step == 500
        srv.start()  # same port, same store
        _train(run, 100)
        run.close()
        history = MlflowClient(srv.uri).get_metric_history(exporter.run_id, "loss")
        steps = sorted(m.step for m in history)
        assert steps == list(range(1, 601))  # every step, none twice
        assert MlflowClient(srv.uri).get_run(exporter.run_id).info.status == "FINISHED"
        kinds = [e.kind for e in RunReader(run.path).events()]
        assert kinds.count("exporter_failed") == 1 and kinds.count("exporter_recovered") == 1
        stats = exporter.stats()
        assert stats.dropped == 0 and stats.undelivered == 0 and stats.failures >= 1
        # every point of the record (series and events); the exporter's own events recorded
        # during the close may be after the delivery's last read
        reader = RunReader(run.path)
        events = reader.events()
        points = sum(len(reader.series(key)) for key in reader.keys()) + len(events)
        late = sum(e.kind.startswith("exporter_") for e in events)
        assert points - late <= stats.delivered <= points
    finally:
        srv.stop()


CRASHING_CHILD = textwrap.dedent("""
    import os, sys
    from loopwise.record import Run
    from loopwise.export.mlflow import MLflowExporter
    run = Run.create(sys.argv[1], name="crashy")
    exporter = MLflowExporter(sys.argv[2], experiment="crashes", close_timeout=120,
                              delivery="thread")  # in process: nothing outlives the crash
    run.add_exporter(exporter)
    for step in range(1, 101):
        run.advance()
        run.log_scalars({"loss": 1.0 / step}, step=step)
    run.flush()
    assert exporter.flush(120)
    print(exporter.run_id, flush=True)
    os._exit(3)  # dies without closing anything
""")


def test_backfill_of_a_crashed_run_closes_its_mlflow_run_as_failed(server, tmp_path):
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_CHILD, str(tmp_path / "runs"), server.uri],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert child.returncode == 3, child.stderr
    mlflow_run_id = child.stdout.strip().splitlines()[-1]
    client = MlflowClient(server.uri)
    assert client.get_run(mlflow_run_id).info.status == "RUNNING"
    run_path = tmp_path / "runs" / "crashy"
    assert RunReader(run_path).status == "crashed"
    code = main(["export", str(run_path), "--to", "mlflow", server.uri,
                 "--experiment", "crashes"])
    assert code == 0
    got = client.get_run(mlflow_run_id)
    assert got.info.status == "FAILED"
    assert got.data.tags["loopwise.status"] == "crashed"
    history = client.get_metric_history(mlflow_run_id, "loss")
    assert sorted(m.step for m in history) == list(range(1, 101))


KILLED_CHILD = textwrap.dedent("""
    import os, signal, sys
    from loopwise.record import Run
    from loopwise.export.mlflow import MLflowExporter
    run = Run.create(sys.argv[1], name="killed")
    exporter = MLflowExporter(sys.argv[2], experiment="kills", close_timeout=120)
    run.add_exporter(exporter)
    for step in range(1, 151):
        run.advance()
        run.log_scalars({"loss": 1.0 / step}, step=step)
        if step == 100:
            run.flush()
            assert exporter.flush(120)
    run.flush()  # steps 101-150 committed, not yet delivered
    print(exporter.run_id, exporter.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_killed_training_process_leaves_the_mlflow_run_failed_with_every_metric(
        server, tmp_path):
    # stderr stays open until the delivery process (which inherits it) has exited
    child = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, str(tmp_path / "runs"), server.uri],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert child.returncode == -signal.SIGKILL, child.stderr
    mlflow_run_id, pid = child.stdout.split()[-2:]
    deadline = time.monotonic() + 120
    while pid_alive(int(pid), None) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(int(pid), None), "the delivery process did not finish"
    got = MlflowClient(server.uri).get_run(mlflow_run_id)
    assert got.info.status == "FAILED"
    assert got.data.tags["loopwise.status"] == "crashed"
    assert "ended without closing the run" in got.data.tags["loopwise.error"]
    history = MlflowClient(server.uri).get_metric_history(mlflow_run_id, "loss")
    assert sorted(m.step for m in history) == list(range(1, 151))


def test_backfill_of_a_finished_run_recorded_without_exporter(server, tmp_path, capsys):
    run = Run.create(tmp_path / "runs", config={"lr": 0.5})
    _train(run, 50)
    run.log_epoch(1, {"loss": 0.1})
    run.log_system({"ram_pct": 30.0})
    run.log_event("checkpoint_saved", "saved", data={"step": 50})
    run.close()
    assert main(["export", str(run.path), "--to", "mlflow", server.uri]) == 0
    assert "mirrored" in capsys.readouterr().out
    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name("loopwise")
    found = client.search_runs([exp.experiment_id],
                               filter_string=f"tags.`loopwise.run_id` = '{run.id}'")
    assert len(found) == 1
    got = found[0]
    assert got.info.status == "FINISHED" and got.data.params == {"lr": "0.5"}
    assert len(client.get_metric_history(got.info.run_id, "loss")) == 50
    assert [m.value for m in client.get_metric_history(got.info.run_id, "system/ram_pct")] == [
        30.0]
    assert "config.json" in {a.path for a in client.list_artifacts(got.info.run_id)}


def test_names_mlflow_refuses_are_made_safe_and_bad_options_refused():
    assert metric_name("loss") == "loss"
    assert metric_name("epoch/val_loss") == "epoch/val_loss"
    assert metric_name("acc@top:5") == "acc_top_5"
    assert metric_name("../x") == "__/x"
    with pytest.raises(ValueError, match="tracking_uri must be a non-empty string"):
        MLflowExporter("")
    with pytest.raises(ValueError, match="experiment must be a non-empty string"):
        MLflowExporter("sqlite:///x.db", experiment=" ")
    with pytest.raises(TypeError, match="artifacts must be a sequence of glob patterns"):
        MLflowExporter("sqlite:///x.db", artifacts="*.png")


def test_an_unreachable_server_is_said_on_the_run_and_at_close(tmp_path, monkeypatch):
    _mlflow_defaults(monkeypatch)
    err = io.StringIO()
    run = Run.create(tmp_path / "runs")
    exporter = MLflowExporter(f"http://127.0.0.1:{free_port()}", retry_initial=0.1,
                              retry_max=0.2, close_timeout=1, stream=err)
    run.add_exporter(exporter)
    _train(run, 40)
    run.flush()
    deadline = time.monotonic() + 30
    while exporter.failures == 0 and time.monotonic() < deadline:  # counts reach this process
        threading.Event().wait(0.1)
    run.close()
    assert exporter.stats().undelivered >= 40 and exporter.stats().delivered == 0
    line = err.getvalue()
    assert "MLflowExporter could not deliver" in line and "left at close after 1 s" in line
    assert "last error: MlflowException" in line and "Connection refused" in line
    assert exporter.stats().failures >= 1
    events = RunReader(run.path).events()
    failed = [e for e in events if e.kind == "exporter_failed"]
    assert len(failed) == 1 and failed[0].data["exporter"] == "MLflowExporter"
    undelivered = [e for e in events if e.kind == "exporter_undelivered"]
    assert undelivered[0].data["undelivered"] == exporter.stats().undelivered


def test_thread_delivery_counts_an_outage_at_once_and_leaves_the_users_settings(
        tmp_path, monkeypatch):
    from mlflow.environment_variables import (
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_HTTP_REQUEST_TIMEOUT,
    )

    _mlflow_defaults(monkeypatch)  # MLflow's own: 7 retries with backoff (minutes of silence)
    srv = Server(tmp_path)
    srv.start()
    try:
        run = Run.create(tmp_path / "runs")
        exporter = MLflowExporter(srv.uri, retry_initial=0.2, retry_max=1.0, close_timeout=120,
                                  delivery="thread")
        run.add_exporter(exporter)
        _train(run, 50)
        run.flush()
        assert exporter.flush(120)
        srv.kill()
        _train(run, 50)
        run.flush()
        deadline = time.monotonic() + 30
        while exporter.failures == 0 and time.monotonic() < deadline:
            threading.Event().wait(0.1)
        assert exporter.failures >= 1, "the outage was hidden by MLflow's own retries"
        assert "Connection refused" in (exporter.last_error or "")
        # the process (the user's own MLflow calls) keeps MLflow's settings
        assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
        assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 7
        assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 120
        srv.start()
        _train(run, 10)
        run.close()
        steps = sorted(m.step for m in MlflowClient(srv.uri).get_metric_history(
            exporter.run_id, "loss"))
        assert steps == list(range(1, 111))  # after the outage: every step, once
        kinds = [e.kind for e in RunReader(run.path).events()]
        assert kinds.count("exporter_failed") == 1 and kinds.count("exporter_recovered") == 1
    finally:
        srv.stop()


def test_without_the_extra_the_error_names_the_pip_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install 'loopwise\[mlflow\]'"):
        MLflowExporter("sqlite:///x.db")


def test_backfill_to_an_unsupported_or_unreachable_target_fails_fast_with_one_line(
        tmp_path, monkeypatch, capsys):
    _mlflow_defaults(monkeypatch)
    run = Run.create(tmp_path / "runs")
    _train(run, 20)
    run.close()
    start = time.monotonic()
    assert main(["export", str(run.path), "--to", "mlflow", "nonsense://x"]) == 2
    assert time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "MLflow has no tracking store for 'nonsense'://; use one of http://" in err
    start = time.monotonic()
    assert main(["export", str(run.path), "--to", "mlflow",
                 f"http://127.0.0.1:{free_port()}"]) == 2
    assert time.monotonic() - start <= 30
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "MLflowExporter could not reach mlflow within 20 s" in err
    assert "Connection refused" in err


def test_a_resumed_run_that_finishes_drops_the_earlier_error_tag(server, tmp_path):
    run = Run.create(tmp_path / "runs", name="again")
    first = MLflowExporter(server.uri, experiment="resumes", close_timeout=120)
    run.add_exporter(first)
    _train(run, 10)
    run.close("failed", error="Traceback...\nValueError: boom")
    client = MlflowClient(server.uri)
    assert client.get_run(first.run_id).data.tags["loopwise.error"].endswith("boom")
    resumed = Run.reopen(run.path)
    second = MLflowExporter(server.uri, experiment="resumes", close_timeout=120)
    resumed.add_exporter(second)
    _train(resumed, 10)
    resumed.close()
    assert second.run_id == first.run_id  # the same MLflow run, continued
    got = client.get_run(first.run_id)
    assert got.info.status == "FINISHED" and got.data.tags["loopwise.status"] == "finished"
    assert "loopwise.error" not in got.data.tags


def test_fit_uploads_its_report_and_the_live_best_model_never_a_spare(server, tmp_path):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from loopwise.train.fit.config import TrainingConfig
    from loopwise.train.fit.entry import fit

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = x.sum(dim=1, keepdim=True)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    exporter = MLflowExporter(server.uri, experiment="fits", close_timeout=120)
    cfg = TrainingConfig(epochs=4, patience=0, lr_patience=0, device="cpu", model_name="m",
                         learning_rate=0.01)
    result = fit(torch.nn.Linear(4, 1), loader, loss_fn=torch.nn.MSELoss(), val_loader=loader,
                 config=cfg, root=tmp_path / "runs", exporters=[exporter], plots=False,
                 progress=False, system=False)
    folder = Path(result.run_path)
    assert list(folder.glob(".spare-*")), "the test needs a recycled spare in the folder"
    client = MlflowClient(server.uri)
    arts = {a.path for a in client.list_artifacts(exporter.run_id)}
    assert "report.html" in arts and "m_best_model.pth" in arts
    assert not [a for a in arts if a.startswith(".")]
    got = Path(client.download_artifacts(exporter.run_id, "m_best_model.pth",
                                         str(tmp_path / "down")))
    assert got.read_bytes() == (folder / "m_best_model.pth").read_bytes()
    html = Path(client.download_artifacts(exporter.run_id, "report.html",
                                          str(tmp_path / "down"))).read_text()
    assert "finished" in html


CLOSING_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from loopwise.export.mlflow import MLflowExporter
    from loopwise.train.callbacks import Callback
    from loopwise.train.fit.config import TrainingConfig
    from loopwise.train.fit.entry import fit

    marker = Path(sys.argv[1]) / "closing"

    def slow_close():  # the close takes a while (as an exporter's drain does)
        marker.touch()
        time.sleep(3)

    class AtEnd(Callback):
        def on_train_end(self, state):
            state.run.on_close(slow_close)

    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)
    exporter = MLflowExporter(sys.argv[2], experiment="closing", close_timeout=120)
    cfg = TrainingConfig(epochs=2, patience=0, lr_patience=0, device="cpu", model_name="m")
    result = fit(torch.nn.Linear(4, 1), loader, loss_fn=torch.nn.MSELoss(), val_loader=loader,
                 config=cfg, root=Path(sys.argv[1]) / "runs", exporters=[exporter],
                 callbacks=[AtEnd()], plots=False, progress=False, system=False)
    print(exporter.run_id, result.status, result.run_path, flush=True)
""")


def test_ctrl_c_while_the_run_closes_leaves_one_status_everywhere(server, tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", CLOSING_CHILD, str(tmp_path), server.uri],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.monotonic() + 240
    while not (tmp_path / "closing").exists() and time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=240)
    assert child.returncode == 0, err
    assert "Traceback" not in err
    assert "Ctrl-C: training is over; the run is closing as finished" in err
    mlflow_run_id, status, folder = out.split()[-3:]
    assert status == "finished"
    folder = Path(folder)
    assert RunReader(folder).status == "finished"
    results = json.loads(next(folder.glob("*results.json")).read_text())
    assert results["status"] == "finished"
    assert (folder / "report.html").is_file()
    got = MlflowClient(server.uri).get_run(mlflow_run_id)
    assert got.info.status == "FINISHED" and got.data.tags["loopwise.status"] == "finished"


def test_processes_opening_one_fresh_sqlite_store_at_once_all_get_it(tmp_path: Path) -> None:
    # MLflow makes a fresh SQLite store's tables unlocked: opened at once by a killed run's
    # delivery process and its resume, one failed ("table ... already exists") without the lock
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = textwrap.dedent(f"""
        import sys, time
        from mlflow.tracking import MlflowClient
        from loopwise.export.mlflow import store_lock
        time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # all start together
        with store_lock({uri!r}):
            client = MlflowClient({uri!r})
            exp = client.get_experiment_by_name("loopwise")
            if exp is None:
                client.create_experiment("loopwise")
        print("opened")
    """)
    at = str(time.time() + 8)  # after the three imports
    procs = [subprocess.Popen([sys.executable, "-c", script, at], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-1500:] for _, err in outs]
    assert all(out.strip() == "opened" for out, _ in outs)
    assert MlflowClient(uri).get_experiment_by_name("loopwise") is not None


def test_an_interrupted_backfill_rerun_sends_only_what_is_missing_each_point_once(
        server, tmp_path):
    import math
    from array import array

    n, t0 = 40_000, time.time()
    with Run.create(tmp_path / "runs", "long") as run:
        run.log_columns({"loss": (array("q", range(1, n + 1)),
                                  array("d", (t0 + i * 1e-3 for i in range(n))),
                                  array("d", (1.0 / (i + 1) for i in range(n))))})
    export = ["export", str(run.path), "--to", "mlflow", server.uri, "--experiment", "resumes"]
    proc = subprocess.Popen([sys.executable, "-m", "loopwise.cli", *export],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    client = MlflowClient(server.uri)
    found: list = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            exp = client.get_experiment_by_name("resumes")
            found = [] if exp is None else client.search_runs([exp.experiment_id])
            if found and any(m.step >= 10_000 for m in found[0].data.to_proto().metrics):
                break
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL by its PID: the backfill is cut mid-way
        proc.wait(60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    time.sleep(1.0)  # requests the server had already taken
    mlflow_run_id = found[0].info.run_id
    landed = len(client.get_metric_history(mlflow_run_id, "loss"))
    assert 0 < landed < n
    assert client.get_run(mlflow_run_id).info.status == "RUNNING"
    requests_before = server.log.read_text().count("/runs/log-batch")
    assert main(export) == 0
    sent = server.log.read_text().count("/runs/log-batch") - requests_before
    history = client.get_metric_history(mlflow_run_id, "loss")
    assert sorted(m.step for m in history) == list(range(1, n + 1))  # each point once
    assert sent <= math.ceil((n - landed) / 1000) + 4  # the missing points (+ params, tags)
    assert client.get_run(mlflow_run_id).info.status == "FINISHED"
