"""``loopwise doctor`` on runs with one known fault each, and on a clean run."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from loopwise.cli import main
from loopwise.record import Run, RunReader
from loopwise.view.doctor import diagnose, render_diagnosis

T0 = 1_700_000_000.0


def _train(run: Run, *, steps: int = 400, epochs: int = 8, seed: int = 0,
           loss_at: Callable[[int, float], float] | None = None,
           val_at: Callable[[int, float], float] | None = None,
           system_at: Callable[[int], dict[str, float]] | None = None) -> None:
    """A healthy-looking loop, with hooks to plant one fault: per-step loss, epoch validation
    loss and the system sample logged at each epoch end (times from a fake clock)."""
    rng = random.Random(seed)
    per_epoch = steps // epochs
    for step in range(1, steps + 1):
        clean = 1.0 * math.exp(-step / 150) + 0.05
        loss = clean * math.exp(rng.gauss(0, 0.1))
        if loss_at is not None:
            loss = loss_at(step, loss)
        run.log_scalars({"loss": loss}, step=step, wall_time=T0 + step)
        if step % per_epoch == 0:
            epoch = step // per_epoch
            sample = {"cpu_pct": 50.0, "proc_rss_mib": 800.0, "steps_per_s": 10.0,
                      "data_wait_pct": 2.0}
            if system_at is not None:
                sample.update(system_at(epoch))
            run.log_system(sample, wall_time=T0 + step - 0.5)
            val = clean * 1.05 if val_at is None else val_at(epoch, clean)
            # what run.log_epoch records, at the fake clock's time
            run.log_scalars({"epoch/loss": clean, "epoch/val_loss": val, "epoch": float(epoch)},
                            step=step, wall_time=T0 + step)


def _doctor(tmp_path: Path, name: str, **plant: object) -> tuple[list[str], str]:
    with Run.create(tmp_path / "runs", name) as run:
        _train(run, **plant)  # type: ignore[arg-type]
    diagnosis = diagnose(RunReader(tmp_path / "runs" / name))
    return [f.detector for f in diagnosis.findings], render_diagnosis(diagnosis)


def test_clean_run_raises_no_alarm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    detectors, text = _doctor(tmp_path, "clean")
    assert detectors == []
    assert "no problems found" in text and text.endswith("verdict: healthy")
    assert main(["doctor", "clean", "--root", str(tmp_path / "runs")]) == 0
    assert "the run finished" in capsys.readouterr().out


def test_nonfinite(tmp_path: Path) -> None:
    detectors, text = _doctor(tmp_path, "nan", loss_at=lambda s, v: math.nan if s == 222 else v)
    assert detectors == ["nonfinite"]
    assert "[nonfinite] step 222: loss is nan at step 222" in text
    assert "try: lower the learning rate, clip gradients" in text


def test_spike(tmp_path: Path) -> None:
    detectors, text = _doctor(tmp_path, "spike", loss_at=lambda s, v: v * 20 if s == 300 else v)
    assert detectors == ["spike"]
    assert "[spike] step 300: loss spiked to" in text


def test_plateau(tmp_path: Path) -> None:
    detectors, text = _doctor(tmp_path, "plateau", steps=480, epochs=12,
                              val_at=lambda e, clean: 0.6 if e >= 3 else 1.0 - 0.1 * e)
    assert "plateau" in detectors  # (the gap to the falling training loss widens too)
    assert "val_loss has not improved for 5 epochs" in text


def test_overfitting(tmp_path: Path) -> None:
    detectors, text = _doctor(tmp_path, "overfit", steps=400, epochs=10,
                              val_at=lambda e, clean: 0.5 if e <= 4 else 0.5 + 0.001 * e)
    assert "overfitting" in detectors
    assert "train/val gap widening" in text and "try: stop early" in text


def test_input_bound(tmp_path: Path) -> None:
    detectors, text = _doctor(tmp_path, "input", system_at=lambda e: {"data_wait_pct": 65.0})
    assert detectors == ["input_bound"]
    assert "the CPU is waiting for data: 65% of step time" in text


def test_memory_leak(tmp_path: Path) -> None:
    detectors, text = _doctor(tmp_path, "leak", steps=400, epochs=10,
                              system_at=lambda e: {"proc_rss_mib": 800.0 + 120.0 * e})
    assert detectors == ["memory_leak"]
    assert "proc_rss_mib grew at each of the last 5 epochs" in text


def test_stalled(tmp_path: Path) -> None:
    with Run.create(tmp_path / "runs", "stuck") as run:
        _train(run)
        for i in range(1, 200):  # the sampler kept sampling, no step for 400 s
            run.log_system({"steps_per_s": 0.0, "data_wait_pct": 0.0},
                           wall_time=T0 + 400 + 2.0 * i)
    diagnosis = diagnose(RunReader(tmp_path / "runs" / "stuck"))
    assert [f.detector for f in diagnosis.findings] == ["stalled"]
    assert "no training step for 300 s" in render_diagnosis(diagnosis)


def test_failed_run_says_how_it_ended(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), Run.create(tmp_path / "runs", "boom") as run:
        _train(run, steps=80, epochs=2)
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert main(["doctor", "boom", "--root", str(tmp_path / "runs")]) == 1
    out = capsys.readouterr().out
    assert "run boom: failed" in out
    assert "the run failed with: RuntimeError: CUDA out of memory" in out
    assert "try: lower the batch size" in out and "verdict: needs attention" in out


def test_crashed_run(tmp_path: Path) -> None:
    import json

    with Run.create(tmp_path / "runs", "gone") as run:
        _train(run, steps=80, epochs=2)
    info_file = tmp_path / "runs" / "gone" / "run.json"
    info = json.loads(info_file.read_text())
    info.update(status="running", pid=2**22 + 12345, heartbeat=time.time() - 3600)
    info_file.write_text(json.dumps(info))
    text = render_diagnosis(diagnose(RunReader(tmp_path / "runs" / "gone")))
    assert "run gone: crashed" in text
    assert "the writing process died without closing the run" in text
    assert "dmesg" in text


def test_doctor_refuses_a_non_reader() -> None:
    with pytest.raises(TypeError, match="reader must be a RunReader, got str"):
        diagnose("runs/x")  # type: ignore[arg-type]


def test_an_epoch_finding_says_epoch_and_the_step_where_it_ended(tmp_path: Path) -> None:
    """A NaN epoch mean (the steps finite): "at epoch 3 (step 150)", not "at step 3"."""
    detectors, text = _doctor(
        tmp_path, "nan_epoch",
        val_at=lambda epoch, clean: float("nan") if epoch == 3 else clean * 1.05)
    assert "nonfinite" in detectors
    line = next(x for x in text.splitlines() if "[nonfinite]" in x)
    assert line.startswith("  - [nonfinite] epoch 3 (step 150): val_loss is nan at epoch 3 "
                           "(step 150)"), line
    assert "at step 3" not in text


def test_a_recorded_health_warning_is_never_healthy(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with Run.create(tmp_path / "runs", "warned") as run:
        _train(run)
        run.log_event("health.spike", "loss spiked to 44.24 at step 60", level="warning",
                      data={"step": 60, "key": "loss"})
    assert main(["doctor", "warned", "--root", str(tmp_path / "runs")]) == 1
    out = capsys.readouterr().out
    assert "recorded during training: 1 health event(s) (health.spike)" in out
    assert "  - [health.spike] step 60: loss spiked to 44.24 at step 60" in out
    assert out.rstrip().endswith("verdict: needs attention")
