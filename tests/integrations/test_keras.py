"""LoopwiseCallback with real Keras 3, under KERAS_BACKEND=torch and KERAS_BACKEND=tensorflow.

One process imports Keras with one backend only, so every training happens in a child process
(``_keras_child.py``): an uninterrupted 4-epoch fit, a fit SIGKILLed after its second epoch's
checkpoint, and its resume to 4 epochs. The record is read back here with RunReader.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopwise.record import RunReader

CHILD = Path(__file__).with_name("_keras_child.py")
SRC = str(Path(__file__).resolve().parents[2] / "src")
STEPS, EPOCHS = 30, 4  # _keras_child: 1500 samples in batches of 50, 4 epochs

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None or importlib.util.find_spec("sklearn") is None,
    reason="needs keras and scikit-learn: pip install 'loopwise[keras]' scikit-learn")


def _env(home: Path, backend: str) -> dict[str, str]:
    path = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "KERAS_BACKEND": backend, "KERAS_HOME": str(home / ".keras"),
            "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLCONFIGDIR": str(home / ".mpl")}


def _child(work: Path, backend: str, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHILD), mode, str(work)], cwd=work,
                          env=_env(work, backend), capture_output=True, text=True, timeout=280)


def _backend_ok(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


@pytest.fixture(scope="module", params=["torch", "tensorflow"])
def trained(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    backend = request.param
    if not _backend_ok(backend):
        pytest.skip(f"{backend} is not installed (pip install 'loopwise[{backend}]')")
    work = tmp_path_factory.mktemp(f"keras-{backend}")
    procs = {mode: _child(work, backend, mode) for mode in ("full", "kill", "resume")}
    for mode in ("full", "resume"):
        assert procs[mode].returncode == 0, procs[mode].stderr[-3000:]
    results = {m: json.loads((work / f"result-{m}.json").read_text()) for m in ("full", "resume")}
    return {"backend": backend, "work": work, "procs": procs, "results": results}


def _weights(work: Path, mode: str) -> list[np.ndarray]:
    with np.load(work / f"weights-{mode}.npz") as data:
        return [data[k] for k in data.files]


def test_children_ran_under_the_backend_asked_for(trained: dict[str, Any]) -> None:
    for result in trained["results"].values():
        assert result["backend"] == trained["backend"]
    assert trained["procs"]["kill"].returncode == -signal.SIGKILL


def test_resume_after_sigkill_gives_the_weights_of_an_uninterrupted_fit(
        trained: dict[str, Any]) -> None:
    work = trained["work"]
    assert trained["results"]["resume"]["initial_epoch"] == 2
    full, resumed = _weights(work, "full"), _weights(work, "resume")
    assert len(full) == len(resumed) == 4
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a, b)


def test_record_has_the_schema_names_and_axes(trained: dict[str, Any]) -> None:
    reader = RunReader(trained["results"]["full"]["run"])
    assert reader.info["status"] == "finished"
    assert set(reader.keys()) == {
        "loss", "accuracy", "lr", "epoch", "epoch/loss", "epoch/accuracy", "epoch/val_loss",
        "epoch/val_accuracy", "epoch/lr", "epoch/seconds"}
    loss = reader.series("loss")
    assert list(loss.steps) == list(range(1, STEPS * EPOCHS + 1))
    assert list(loss.epochs) == [e for e in range(1, EPOCHS + 1) for _ in range(STEPS)]
    epoch = reader.series("epoch")
    assert list(epoch.steps) == [STEPS * e for e in range(1, EPOCHS + 1)]
    assert list(epoch.values) == [1.0, 2.0, 3.0, 4.0]
    assert list(reader.series("epoch/val_loss").steps) == list(epoch.steps)
    assert list(reader.series("lr").steps) == [STEPS * e + 1 for e in range(EPOCHS)]
    assert reader.series("epoch/lr").values[-1] == pytest.approx(1e-3)


def test_per_step_values_average_to_keras_epoch_logs(trained: dict[str, Any]) -> None:
    """Keras logs running means per batch; the record holds per-step values, whose mean over
    an epoch of equal batches is Keras's epoch value."""
    reader = RunReader(trained["results"]["full"]["run"])
    for key in ("loss", "accuracy"):
        steps = np.asarray(reader.series(key).values).reshape(EPOCHS, STEPS)
        per_epoch = np.asarray(reader.series(f"epoch/{key}").values)
        np.testing.assert_allclose(steps.mean(axis=1), per_epoch, rtol=1e-4, atol=1e-5)
        assert not np.allclose(steps[0], np.cumsum(steps[0]) / np.arange(1, STEPS + 1))
    accuracy = np.asarray(reader.series("accuracy").values)
    assert ((accuracy >= 0) & (accuracy <= 1 + 1e-6)).all()


def test_config_events_and_system_samples(trained: dict[str, Any]) -> None:
    reader = RunReader(trained["results"]["full"]["run"])
    config = reader.config()
    assert config["epochs"] == EPOCHS and config["steps"] == STEPS and config["verbose"] == 0
    assert config["batch_size"] == 50 and config["keras_backend"] == trained["backend"]
    kinds = [e.kind for e in reader.events()]
    assert kinds.count("epoch_end") == EPOCHS and kinds.count("checkpoint_saved") == EPOCHS
    summary = next(e for e in reader.events() if e.kind == "model_summary")
    assert summary.data["total_params"] == 64 * 32 + 32 + 32 * 10 + 10
    assert "dense" in summary.message
    assert {name for _, name, _ in reader.system()} >= {"cpu_pct", "ram_pct", "proc_rss_mib"}


def test_resumed_run_continues_the_killed_run(trained: dict[str, Any]) -> None:
    reader = RunReader(trained["results"]["resume"]["run"])
    assert Path(trained["results"]["resume"]["run"]).name == "digits-kill"
    assert reader.info["status"] == "finished"
    assert list(reader.series("loss").steps) == list(range(1, STEPS * EPOCHS + 1))
    assert list(reader.series("epoch").values) == [1.0, 2.0, 3.0, 4.0]
    kinds = [e.kind for e in reader.events()]
    assert "resumed" in kinds and "checkpoint_loaded" in kinds
    loaded = next(e for e in reader.events() if e.kind == "checkpoint_loaded")
    assert loaded.data == {"epoch": 2, "step": 2 * STEPS}


def test_exporters_receive_the_record(trained: dict[str, Any]) -> None:
    result = trained["results"]["full"]
    assert {"loss", "accuracy", "epoch", "epoch/loss", "epoch/val_loss"} <= set(result["keys"])
    assert "system:cpu_pct" in result["keys"]
    assert "model_summary" in result["events"] and "checkpoint_saved" in result["events"]
    assert result["config"]["epochs"] == EPOCHS
    assert result["closed"] == "finished"


def test_progress_bar_and_epoch_summaries_are_printed(trained: dict[str, Any]) -> None:
    err = trained["procs"]["full"].stderr
    assert "Epoch 1/4 (Training)" in err and "30/30" in err
    assert "Epoch 4/4 Summary:" in err
    assert "  Validation - Accuracy:" in err


def _run_code(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env=_env(tmp_path, "torch"), timeout=120)


@pytest.mark.skipif(not _backend_ok("torch"), reason="needs torch")
def test_bad_arguments_are_refused_with_what_to_do(tmp_path: Path) -> None:
    code = """
from loopwise.keras import LoopwiseCallback
for kwargs in ({"resume": True}, {"save_every": 0}, {"run": "runs/x"}, {"exporters": [1]},
               {"flush_interval": 0}, {"async_safe": "yes"}):
    try:
        LoopwiseCallback(**kwargs)
    except (TypeError, ValueError) as exc:
        print(type(exc).__name__, exc)
"""
    proc = _run_code(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "ValueError resume=True needs checkpoint_dir= (where the checkpoints are)"
    assert lines[1] == "ValueError save_every must be an int >= 1 (epochs), got 0"
    assert lines[2] == "TypeError run must be a loopwise Run, got str"
    assert lines[3].startswith("TypeError exporters must be loopwise Recorders")
    assert lines[4] == "ValueError flush_interval must be a finite number > 0 (seconds), got 0"
    assert lines[5] == "TypeError async_safe must be True or False, got 'yes'"


@pytest.mark.skipif(not _backend_ok("torch"), reason="needs torch")
def test_verbose_fit_warns_to_pass_verbose_0(tmp_path: Path) -> None:
    code = """
import numpy as np, keras, warnings
from loopwise.keras import LoopwiseCallback
net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
net.compile(optimizer="sgd", loss="mse")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    net.fit(np.zeros((8, 4)), np.zeros((8, 1)), epochs=1, verbose=2,
            callbacks=[LoopwiseCallback(system=False)])
print([str(w.message) for w in caught if "verbose=0" in str(w.message)])
"""
    proc = _run_code(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    assert "pass verbose=0 to fit" in proc.stdout


@pytest.mark.skipif(not _backend_ok("torch"), reason="needs torch")
def test_failed_fit_closes_the_run_as_failed_inside_with(tmp_path: Path) -> None:
    """Keras calls no hook when fit raises; ``with`` (or interpreter exit) closes the run."""
    code = """
import numpy as np, keras
from loopwise.keras import LoopwiseCallback

class Boom(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("boom in epoch 1")

net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
net.compile(optimizer="sgd", loss="mse")
try:
    with LoopwiseCallback(name="failing", system=False, progress=False) as callback:
        net.fit(np.zeros((8, 4)), np.zeros((8, 1)), epochs=2, verbose=0,
                callbacks=[callback, Boom()])
except RuntimeError:
    pass
net.fit(np.zeros((8, 4)), np.zeros((8, 1)), epochs=2, verbose=0,
        callbacks=[LoopwiseCallback(name="exit", system=False, progress=False), Boom()])
"""
    proc = _run_code(tmp_path, code)
    assert proc.returncode == 1 and "boom in epoch 1" in proc.stderr
    failing = RunReader(tmp_path / "runs" / "failing")
    assert failing.info["status"] == "failed"
    assert "boom in epoch 1" in failing.info["error"]
    assert RunReader(tmp_path / "runs" / "exit").info["status"] == "failed"


@pytest.mark.skipif(not _backend_ok("torch"), reason="needs torch")
def test_batch_hooks_leave_the_training_thread_when_async_safe_or_on_an_accelerator(
        tmp_path: Path) -> None:
    """Under the torch backend Keras sends batch hooks to its callback thread when every
    callback is async-safe; LoopwiseCallback is when told async_safe=True, and by default only
    where the backend has an accelerator."""
    code = """
import threading
import numpy as np, keras
from loopwise.keras import LoopwiseCallback

class Probe(LoopwiseCallback):
    def on_train_batch_end(self, batch, logs=None):
        self.on_main.add(threading.current_thread() is threading.main_thread())
        super().on_train_batch_end(batch, logs)

net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
net.compile(optimizer="sgd", loss="mse")
for flag in (True, False, None):
    probe = Probe(system=False, progress=False, async_safe=flag)
    probe.on_main = set()
    net.fit(np.zeros((64, 4)), np.zeros((64, 1)), batch_size=8, epochs=1, verbose=0,
            callbacks=[probe])
    print(flag, sorted(probe.on_main))
import torch
print("accelerator", torch.cuda.is_available())
"""
    proc = _run_code(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["True [False]", "False [True]"]
    # the default (None): Keras's thread pool only where there is a device read to hide
    assert lines[2] == ("None [False]" if lines[3] == "accelerator True" else "None [True]")
