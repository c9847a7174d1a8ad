"""The delivery machinery shared by every exporter, with a backend that fails on demand."""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from loopwise.export.base import Exporter
from loopwise.export.payload import EventRow, Sample
from loopwise.record import Run, RunReader
from loopwise.record.recorder import ColumnData, Recorder


class Backend(Exporter):
    """Keeps what it was sent; ``down`` makes every send fail; ``gate`` blocks sends."""

    backend = "memory"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.points: dict[str, list[tuple[int, float]]] = {}
        self.events: list[EventRow] = []
        self.samples: list[Sample] = []
        self.configs: list[Mapping[str, Any]] = []
        self.finished: list[tuple[str, str | None]] = []
        self.down = False
        self.gate = threading.Event()
        self.gate.set()

    def _check(self) -> None:
        self.gate.wait()
        if self.down:
            raise ConnectionError("backend unreachable")

    def _send_columns(self, columns: Mapping[str, ColumnData]) -> None:
        self._check()
        for key, (steps, _, values) in columns.items():
            self.points.setdefault(key, []).extend(zip(steps, values))

    def _send_events(self, events: Sequence[EventRow]) -> None:
        self._check()
        self.events.extend(events)

    def _send_system(self, samples: Sequence[Sample]) -> None:
        self._check()
        self.samples.extend(samples)

    def _send_config(self, config: Mapping[str, Any]) -> None:
        self._check()
        self.configs.append(config)

    def _finish(self, status: str, error: str | None) -> None:
        self._check()
        self.finished.append((status, error))


def test_an_exporter_is_a_recorder_and_gets_what_the_run_committed(tmp_path):
    run = Run.create(tmp_path / "runs", config={"lr": 0.1})
    backend = Backend()
    assert isinstance(backend, Recorder)
    run.add_exporter(backend)
    for step in range(1, 51):
        run.log_scalars({"loss": 1.0 / step}, step=step)
    run.log_epoch(1, {"loss": 0.3, "val_loss": 0.4}, step=50)
    run.log_system({"cpu_pct": 12.5})
    run.log_event("health.spike", "loss spiked", level="warning", data={"step": 42})
    run.close()
    assert backend.configs == [{"lr": 0.1}]
    assert [s for s, _ in backend.points["loss"]] == list(range(1, 51))
    assert backend.points["epoch/val_loss"] == [(50, 0.4)]
    assert backend.points["epoch"] == [(50, 1.0)]
    assert backend.samples[0].values == {"cpu_pct": 12.5}
    spike = next(e for e in backend.events if e.kind == "health.spike")
    assert spike.step == 42 and spike.level == "warning"
    assert backend.finished == [("finished", None)]
    assert backend.stats().delivered == 50 + 3 + 1 + len(backend.events)


def test_a_down_backend_is_retried_and_its_failure_and_recovery_are_events(tmp_path):
    run = Run.create(tmp_path / "runs")
    backend = Backend(retry_initial=0.01, retry_max=0.05)
    run.add_exporter(backend)
    backend.down = True
    run.log_scalars({"loss": 1.0}, step=1)
    run.flush()
    while backend.failures < 3:  # retried, with the payload kept
        threading.Event().wait(0.01)
    run.log_scalars({"loss": 2.0}, step=2)
    backend.down = False
    run.flush()
    assert backend.flush(30)
    run.close()
    assert backend.points["loss"] == [(1, 1.0), (2, 2.0)]
    kinds = [e.kind for e in RunReader(run.path).events()]
    assert kinds.count("exporter_failed") == 1
    assert kinds.count("exporter_recovered") == 1
    failed = RunReader(run.path).events(kind="exporter_failed")[0]
    assert "backend unreachable" in failed.message and failed.level == "warning"


def test_the_queue_is_bounded_drops_the_oldest_and_never_blocks_the_caller():
    backend = Backend(max_pending=100, close_timeout=5)
    backend.gate.clear()  # the backend hangs: nothing is delivered
    backend.log_scalars({"loss": 0.0}, step=0)  # taken by the thread, stuck in the send
    while not backend._busy:
        threading.Event().wait(0.01)
    for step in range(1, 1001):  # returns at once although the backend is stuck
        backend.log_scalars({"loss": float(step)}, step=step)
    assert backend.stats().queued == 100
    assert backend.dropped == 900
    backend.gate.set()
    backend.close()
    assert [s for s, _ in backend.points["loss"]] == [0, *range(901, 1001)]


def test_close_drains_within_its_timeout_and_says_what_was_not_delivered(tmp_path):
    run = Run.create(tmp_path / "runs")
    err = io.StringIO()
    backend = Backend(retry_initial=0.01, retry_max=0.02, close_timeout=0.3, stream=err)
    run.add_exporter(backend)
    backend.down = True
    run.log_scalars({"loss": 1.0, "acc": 0.5}, step=1)
    run.close("failed", error="Traceback...\nValueError: boom")
    line = err.getvalue()
    assert "Backend could not deliver" in line and "left at close after 0.3 s" in line
    assert "backend unreachable" in line
    event = RunReader(run.path).events(kind="exporter_undelivered")[0]
    assert event.data is not None and event.data["undelivered"] >= 2
    assert event.data["exporter"] == "Backend"
    assert backend.finished == []


def test_nothing_is_said_when_everything_arrived(tmp_path):
    run = Run.create(tmp_path / "runs")
    err = io.StringIO()
    backend = Backend(stream=err)
    run.add_exporter(backend)
    run.log_scalars({"loss": 1.0}, step=1)
    run.close()
    assert err.getvalue() == ""
    assert RunReader(run.path).events(kind="exporter_undelivered") == []


@pytest.mark.parametrize(("kw", "message"), [
    ({"max_pending": 0}, "max_pending must be an int >= 1"),
    ({"retry_initial": 0}, r"retry_initial must be a finite number > 0 \(seconds\), got 0"),
    ({"close_timeout": -1}, r"close_timeout must be a finite number >= 0 \(seconds\), got -1"),
    ({"retry_max": float("inf")}, "retry_max must be a finite number"),
])
def test_bad_options_are_refused_by_name(kw, message):
    with pytest.raises(ValueError, match=message):
        Backend(**kw)


def test_state_dict_round_trip_and_bad_state():
    a = Backend()
    a.delivered, a.dropped = 7, 2
    b = Backend()
    b.load_state_dict(a.state_dict())
    assert (b.delivered, b.dropped) == (7, 2)
    with pytest.raises(ValueError, match=r"state\['dropped'\] must be an int >= 0"):
        b.load_state_dict({"dropped": -1})
