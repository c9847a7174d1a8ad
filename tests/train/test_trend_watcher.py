"""TrendWatcher: plateau, rising loss and widening gap warnings recorded as run events."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from loopwise.record import Run, RunReader
from loopwise.train.callbacks import LoopState, TrendWatcher


def _feed(cb: TrendWatcher, rows: list[dict[str, float]], run: object = None,
          start: int = 1) -> None:
    for epoch, metrics in enumerate(rows, start=start):
        cb.on_evaluate(LoopState(epoch=epoch, metrics=metrics, run=run))


def test_plateau_rising_and_gap_are_recorded_once_each(tmp_path: Path) -> None:
    console = io.StringIO()
    cb = TrendWatcher(patience=4, rising=3, gap_epochs=3, console=console)
    rows = [{"train_loss": 1.0, "val_loss": 1.0}, {"train_loss": 0.8, "val_loss": 0.8},
            {"train_loss": 0.6, "val_loss": 0.9}, {"train_loss": 0.4, "val_loss": 1.0},
            {"train_loss": 0.2, "val_loss": 1.1}, {"train_loss": 0.1, "val_loss": 1.2},
            {"train_loss": 0.05, "val_loss": 1.3}]
    with Run.create(root=tmp_path, name="r") as run:
        _feed(cb, rows, run)
    events = RunReader(tmp_path / "r").events()
    messages = {e.kind: e.message for e in events if e.kind.startswith("health.")}
    assert messages["health.plateau"].startswith("val_loss has not improved for 4 epochs")
    assert messages["health.trend"].startswith("val_loss rising for 3 epochs")
    assert messages["health.overfitting"].startswith("train/val gap widening for 3 epochs")
    assert all(e.level == "warning" for e in events if e.kind.startswith("health."))
    assert len([e for e in events if e.kind.startswith("health.")]) == 3
    assert {f.detector: f.step for f in cb.findings}["plateau"] == 6  # 4 epochs after 0.8
    assert "val_loss has not improved" in console.getvalue()


def test_training_loss_rising() -> None:
    cb = TrendWatcher(console=None)
    _feed(cb, [{"train_loss": v} for v in (1.0, 0.9, 1.0, 1.1, 1.2)])
    assert [f.message.split(" (")[0] for f in cb.findings] == ["train_loss rising for 3 epochs"]


def test_healthy_curves_stay_silent() -> None:
    cb = TrendWatcher(console=None)
    _feed(cb, [{"train_loss": 1.0 / e, "val_loss": 1.1 / e} for e in range(1, 15)])
    assert cb.findings == []


def test_state_survives_resume() -> None:
    rows = [{"val_loss": v} for v in (1.0, 0.5, 0.6, 0.7)]
    first = TrendWatcher(patience=3, console=None)
    _feed(first, rows[:3])
    resumed = TrendWatcher(patience=3, console=None)
    resumed.load_state_dict(first.state_dict())
    _feed(resumed, [rows[3], {"val_loss": 0.55}], start=4)
    assert [f.detector for f in resumed.findings] == ["plateau"]
    assert resumed.findings[0].step == 5


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        TrendWatcher(patience=0)
    with pytest.raises(ValueError, match="train_key and val_key must differ"):
        TrendWatcher(train_key="loss", val_key="loss")
    with pytest.raises(KeyError, match="TrendWatcher state is missing 'health'"):
        TrendWatcher().load_state_dict({})
