"""loopwise.transformers with a real Hugging Face ``Trainer.train`` (CPU) on a 2-layer BERT built
from a config in the child (nothing downloaded: HF_HUB_OFFLINE, a temporary HF_HOME).

The trainings run in child processes (``_transformers_child.py``): an uninterrupted train (then
one that raises and one stopped by Ctrl-C), a train SIGKILLed at step 8, and its resume from
checkpoint-5. The record is read back here with RunReader.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import signal
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from loopwise.record import RunReader

pytestmark = pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                                reason="needs transformers: pip install 'loopwise[transformers]'")

HERE = Path(__file__).parent
CHILD = HERE / "_transformers_child.py"
SRC = str(HERE.parents[1] / "src")
EPOCHS, STEPS = 2, 8
SHARED = {"loss", "lr", "epoch", "epoch/loss", "epoch/val_loss", "epoch/lr", "epoch/seconds"}


@pytest.fixture(autouse=True)
def _offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers imported here too reads nothing from the network or the user's cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / ".hf"))


def _start(work: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(HERE)]),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(work / ".hf"),
           "MPLCONFIGDIR": str(work / ".mpl"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(CHILD), mode, str(work)], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("transformers")
    started = {mode: _start(work, mode) for mode in ("full", "kill")}
    out = {mode: proc.communicate(timeout=280) for mode, proc in started.items()}
    codes = {mode: proc.returncode for mode, proc in started.items()}
    killed = RunReader(work / "runs" / "hf-kill")
    killed_status, killed_steps = killed.info["status"], list(killed.series("loss").steps)
    resume = _start(work, "resume")
    out["resume"] = resume.communicate(timeout=280)
    codes["resume"] = resume.returncode
    for mode in ("full", "resume"):
        assert codes[mode] == 0, out[mode][1][-3000:]
    results = {m: json.loads((work / f"result-{m}.json").read_text()) for m in ("full", "resume")}
    return {"work": work, "out": out, "codes": codes, "results": results,
            "killed_status": killed_status, "killed_steps": killed_steps}


def test_train_records_the_logs_under_the_record_names(trained: dict[str, Any]) -> None:
    reader = RunReader(trained["results"]["full"]["run"])
    assert reader.info["status"] == "finished"
    assert SHARED | {"grad_norm", "epoch/val_runtime"} <= set(reader.keys())
    assert not {"learning_rate", "eval_loss", "train_loss"} & set(reader.keys())
    steps = list(range(1, EPOCHS * STEPS + 1))
    assert list(reader.series("loss").steps) == steps  # logging_steps=1
    assert list(reader.series("lr").steps) == steps
    assert reader.series("lr").values[0] == pytest.approx(1e-3, rel=0.2)  # linear decay
    assert list(reader.series("epoch").steps) == [8, 16]
    assert list(reader.series("epoch").values) == [1.0, 2.0]
    assert list(reader.series("epoch/val_loss").steps) == [8, 16]
    loss = reader.series("loss").values
    assert reader.series("epoch/loss").values[0] == pytest.approx(sum(loss[:STEPS]) / STEPS)
    config = reader.config()  # the TrainingArguments
    assert config["learning_rate"] == 1e-3 and config["num_train_epochs"] == EPOCHS
    assert config["per_device_train_batch_size"] == 8 and config["model"] == \
        "BertForSequenceClassification"
    saved = [e for e in reader.events() if e.kind == "checkpoint_saved"]
    assert [e.data["step"] for e in saved] == [5, 10, 15, 16]
    assert (Path(saved[0].data["file"]) / "loopwise.json").is_file()
    end = next(e for e in reader.events() if e.kind == "train_end")
    assert end.data["step"] == 16 and end.data["train_runtime"] > 0
    assert {name for _, name, _ in reader.system()} >= {"cpu_pct", "ram_pct", "steps_per_s"}


def test_one_bar_loopwise_s_in_place_of_hf_s(trained: dict[str, Any]) -> None:
    stdout, stderr = trained["out"]["full"]
    both = stdout + stderr
    lines = re.split(r"[\r\n]+", both)
    counters = [line for line in lines if re.search(r"\d+/16 \[", line)]
    assert counters and all(line.startswith("Training:") for line in counters), counters[:5]
    assert "16/16" in stderr and "loss=" in stderr and "batch/s" in stderr
    assert "Epoch 1/2 Summary:" in stderr and "Epoch 2/2 Summary:" in stderr
    assert "Validation - Loss:" in stderr and "runtime" not in stderr.split("Summary:")[1]
    assert "{'loss':" not in both  # HF's PrinterCallback


def test_sigkill_reads_crashed_and_the_resume_has_every_step_once(
        trained: dict[str, Any]) -> None:
    assert trained["codes"]["kill"] == -signal.SIGKILL
    assert trained["killed_status"] == "crashed"
    assert trained["killed_steps"] == list(range(1, 8))  # past checkpoint-5
    reader = RunReader(trained["results"]["resume"]["run"])
    assert Path(reader.path).name == "hf-kill" and reader.info["status"] == "finished"
    assert list(reader.series("loss").steps) == list(range(1, EPOCHS * STEPS + 1))
    assert list(reader.series("epoch").values) == [1.0, 2.0]
    assert list(reader.series("epoch/val_loss").steps) == [8, 16]
    loaded = next(e for e in reader.events() if e.kind == "checkpoint_loaded")
    assert loaded.data["step"] == 5
    assert "resumed" in [e.kind for e in reader.events()]


def test_an_exception_reads_failed_and_ctrl_c_interrupted_at_once(
        trained: dict[str, Any]) -> None:
    result = trained["results"]["full"]
    assert result["exception"]["raised"] == "RuntimeError"
    assert result["exception"]["status"] == "failed"
    assert "exception" in result["exception"]["events"]
    assert result["ctrl-c"]["raised"] == "KeyboardInterrupt"
    assert result["ctrl-c"]["status"] == "interrupted"
    assert "interrupted" in result["ctrl-c"]["events"]


def test_exporters_receive_the_record_and_compare_lines_it_up(trained: dict[str, Any]) -> None:
    from loopwise.cli import main

    result = trained["results"]["full"]
    assert set(result["keys"]) >= SHARED and "system:cpu_pct" in result["keys"]
    assert "checkpoint_saved" in result["events"] and "train_end" in result["events"]
    assert result["config"]["num_train_epochs"] == EPOCHS and result["closed"] == "finished"
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["compare", result["run"], trained["results"]["resume"]["run"]]) == 0
    rows = {line.split()[0] for line in out.getvalue().splitlines() if line.strip()}
    assert SHARED - {"epoch"} <= rows, out.getvalue()


def test_split_logs_names_hf_s_keys_as_the_record_does() -> None:
    from loopwise.transformers.callback import split_logs

    train, evaluation, end = split_logs({"loss": 1.0, "learning_rate": 2.0, "grad_norm": 3.0,
                                         "epoch": 0.5, "eval_loss": 4.0, "eval_accuracy": 5.0,
                                         "train_runtime": 6.0, "note": "x"})
    assert train == {"loss": 1.0, "lr": 2.0, "grad_norm": 3.0}
    assert evaluation == {"val_loss": 4.0, "val_accuracy": 5.0}
    assert end == {"train_runtime": 6.0}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"flush_interval": -1}, "flush_interval must be a finite number > 0 (seconds), got -1"),
    ({"run": "runs/x"}, "run must be a loopwise Run, got str"),
    ({"exporters": [1]}, "exporters must be loopwise Recorders (e.g. from loopwise.export), "
                         "got int"),
    ({"progress": "yes"}, "progress must be True or False, got 'yes'"),
    ({"nan_inf_filter": 1}, "nan_inf_filter must be True or False, got 1"),
    ({"file": 3}, "file must be a text stream with write(), got int"),
])
def test_bad_arguments_are_refused_with_what_to_do(kwargs: dict[str, Any], message: str) -> None:
    from loopwise.transformers import LoopwiseCallback

    with pytest.raises((TypeError, ValueError)) as info:
        LoopwiseCallback(**kwargs)
    assert str(info.value) == message
    with pytest.raises(TypeError, match="attach\\(\\) takes a transformers.Trainer, got dict"):
        LoopwiseCallback().attach({})


def test_a_loss_gone_nan_fires_the_nonfinite_health_event_at_its_step(tmp_path: Path) -> None:
    """The health detectors behind a real Trainer.train: the loss NaN from step 4 on. HF's
    ``logging_nan_inf_filter`` (on by default) would log it as the mean of the finite losses
    (0.0 once every step is NaN); the callback turns it off and says so, so the loss is
    recorded as NaN and found at its step, as is the gradient norm it makes NaN."""
    proc = _start(tmp_path, "nan")
    _, err = proc.communicate(timeout=280)
    assert proc.returncode == 0, err[-3000:]
    result = json.loads((tmp_path / "result-nan.json").read_text())
    health = [e for e in result["events"] if e["kind"] == "health.nonfinite"]
    at_step = sorted((e["data"]["key"], e["data"]["step"]) for e in health
                     if e["data"].get("epoch") is None)
    assert at_step == [("grad_norm", 4), ("loss", 4)], health
    assert any("loss is nan at step 4" in e["message"] for e in health)
    loss = dict(result["loss"])
    assert loss[3] != "nan" and loss[4] == "nan" and loss[8] == "nan"  # never a made-up 0.0
    (note,) = [e for e in result["events"] if "logging_nan_inf_filter" in e["message"]]
    assert "nan_inf_filter=True" in note["message"]
    assert {e["data"]["key"] for e in health} >= {"val_loss"}  # the epoch's evaluation too


def test_the_record_lines_up_with_a_fit_run_in_compare(trained: dict[str, Any],
                                                      tmp_path: Path) -> None:
    import torch

    from loopwise import TrainingConfig, fit
    from loopwise.cli import main

    torch.manual_seed(0)
    x = torch.randn(48, 8)
    data = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    result = fit(net, loader, val_loader=loader, loss_fn=torch.nn.functional.cross_entropy,
                 config=TrainingConfig(epochs=EPOCHS, learning_rate=0.05), root=tmp_path,
                 name="fit", progress=False, plots=False, report=False, system=False)
    assert set(RunReader(tmp_path / "fit").keys()) >= SHARED, result
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["compare", str(tmp_path / "fit"), trained["results"]["full"]["run"]]) == 0
    metrics = out.getvalue().split("\nconfig:")[0]  # the metrics table, not the config diff
    rows = {cells[0]: cells[1:] for line in metrics.splitlines()
            if len(cells := re.split(r"\s{2,}", line.strip())) == 3}
    for key in SHARED - {"epoch"}:  # one row per key, a value in both runs' columns
        assert key in rows and all(c != "-" and not c.startswith("- ") for c in rows[key]), (
            key, out.getvalue())
