import csv
import io
import math
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from loopwise import TrainingMonitor
from loopwise.record import Run, RunReader


def _monitor(iterable: object, **kw: object) -> TrainingMonitor:  # type: ignore[type-arg]
    kw.setdefault("file", io.StringIO())
    kw.setdefault("system", False)
    return TrainingMonitor(iterable, **kw)  # type: ignore[arg-type]


def _only_run(root: Path = Path("runs")) -> RunReader:
    (path,) = list(root.iterdir())
    return RunReader(path)


def test_wraps_list_generator_empty_and_dataloader() -> None:
    assert list(_monitor([1, 2, 3])) == [1, 2, 3]
    assert list(_monitor(x for x in range(4))) == [0, 1, 2, 3]
    assert list(_monitor([])) == []
    loader = DataLoader(TensorDataset(torch.arange(10.0)), batch_size=4)
    batches = list(_monitor(loader))
    assert [len(b[0]) for b in batches] == [4, 4, 2]


def test_running_averages_and_record(tmp_path: Path) -> None:
    m = _monitor(range(6), desc="Training")
    for i in m:
        m.log({"loss": torch.tensor(float(i)), "acc": i * 10})
        if i % 3 == 0:
            m.log({"val": float(i)})
    assert m.averages() == {"loss": 2.5, "acc": 25.0, "val": 1.5}
    assert _only_run().status == "running"  # the active run stays open for the next monitor
    m.close()
    reader = _only_run()
    assert reader.status == "finished"
    assert list(reader.series("loss").values) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert list(reader.series("loss").steps) == [1, 2, 3, 4, 5, 6]
    assert list(reader.series("val").steps) == [1, 4]


PATTERN = st.lists(st.tuples(st.booleans(), st.booleans(),
                             st.floats(-100, 100, allow_nan=False)), max_size=40)


@settings(max_examples=25, deadline=None)
@given(PATTERN)
def test_averages_match_plain_reference(pattern: list[tuple[bool, bool, float]]) -> None:
    m = _monitor(range(len(pattern)), record=False)
    ref: dict[str, list[float]] = {"a": [], "b": []}
    for (log_a, log_b, v), _ in zip(pattern, m):
        if log_a:
            m.log({"a": v})
            ref["a"].append(v)
        if log_b:
            m.log({"b": torch.tensor(v * 2, dtype=torch.float64)})
            ref["b"].append(v * 2)
    got = m.averages()
    for key, seen in ref.items():
        if seen:
            assert math.isclose(got[key], sum(seen) / len(seen), rel_tol=1e-9, abs_tol=1e-9)
        else:
            assert key not in got


def test_csv_columns_values_and_late_metric(tmp_path: Path) -> None:
    m = _monitor(range(4), log_file=tmp_path / "logs" / "train.csv")
    for i in m:
        m.log({"loss": float(i)})
        if i >= 2:
            m.log({"acc": 1.0})
    with (tmp_path / "logs/train.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "step", "loss", "acc", "RAM_pct", "VRAM_gb"]
    body = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [r["step"] for r in body] == ["1", "2", "3", "4"]
    assert [float(r["loss"]) for r in body] == [0.0, 0.5, 1.0, 1.5]
    assert body[0]["acc"] == "" and float(body[3]["acc"]) == 1.0
    assert 0 < float(body[0]["RAM_pct"]) <= 100 and float(body[0]["VRAM_gb"]) == 0.0
    assert "T" in body[0]["timestamp"]


def test_monitors_sharing_a_run_continue_the_step(tmp_path: Path) -> None:
    with Run.create(tmp_path, "shared") as run:
        for _epoch in range(2):
            m = _monitor(range(3), run=run)
            for i in m:
                m.log({"loss": float(i)})
            assert not run.closed
        assert m.step == 6
    series = RunReader(tmp_path / "shared").series("loss")
    assert list(series.steps) == [1, 2, 3, 4, 5, 6]
    assert list(series.values) == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]


def test_exception_in_with_block_marks_failed_and_reraises() -> None:
    with pytest.raises(ValueError, match="bad batch"), _monitor(range(10)) as m:
        for i in m:
            m.log({"loss": 1.0})
            if i == 3:
                raise ValueError("bad batch")
    reader = _only_run()
    assert reader.status == "failed"
    assert "ValueError: bad batch" in reader.events(kind="exception")[0].data["traceback"]
    assert len(reader.series("loss")) == 4


def test_keyboard_interrupt_marks_interrupted() -> None:
    with pytest.raises(KeyboardInterrupt), _monitor(range(10)) as m:
        for i in m:
            m.log({"loss": 1.0})
            if i == 2:
                raise KeyboardInterrupt
    assert _only_run().status == "interrupted"


def test_exception_from_the_iterable_marks_failed() -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    m = _monitor(broken())
    with pytest.raises(OSError, match="disk gone"):
        for _ in m:
            m.log({"loss": 2.0})
    reader = _only_run()
    assert reader.status == "failed" and list(reader.series("loss").values) == [2.0]


def test_plain_loop_exception_closes_run_failed_at_exit(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        from loopwise import TrainingMonitor
        for i in TrainingMonitor(range(10), system=False):
            if i == 2:
                raise RuntimeError("plain loop failure")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 1
    reader = _only_run(tmp_path / "runs")
    assert reader.status == "failed"
    assert "plain loop failure" in reader.info["error"]


def test_break_keeps_values_and_close_finishes() -> None:
    m = _monitor(range(100))
    for i in m:
        m.log({"loss": float(i)})
        if i == 4:
            break
    m.close()
    reader = _only_run()
    assert reader.status == "finished" and len(reader.series("loss")) == 5


def test_bar_shows_averages_and_wait_share() -> None:
    out = io.StringIO()

    def slow() -> Iterator[int]:
        for i in range(3):
            time.sleep(0.03)
            yield i

    m = TrainingMonitor(slow(), desc="Training", file=out, system=False, record=False)
    for _ in m:
        m.log({"loss": 0.25})
    text = out.getvalue()
    assert "Training" in text and "loss=0.25" in text
    share = int(text.rsplit("wait=", 1)[1].split("%")[0])
    assert share > 50
    assert m.stats.data_wait_share > 0.5 and m.stats.steps == 3


def test_nan_recorded_counted_and_warned_once() -> None:
    m = _monitor(range(5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in m:
            m.log({"loss": float("nan"), "ok": 1.0})
    ours = [w for w in caught if "non-finite" in str(w.message)]
    assert len(ours) == 1
    assert m.nonfinite_counts == {"loss": 5}
    reader = _only_run()
    assert all(math.isnan(v) for v in reader.series("loss").values)
    assert len(reader.events(kind="nonfinite")) == 1


def test_bad_values_are_specific_errors_and_lose_nothing() -> None:
    m = _monitor(range(3))
    it = iter(m)
    next(it)
    m.log({"loss": 1.0})
    with pytest.raises(TypeError, match="metric 'loss' must be a real number .*got str"):
        m.log({"loss": "high"})
    with pytest.raises(ValueError, match="metric name must be a non-empty string"):
        m.log({"": 1.0})
    with pytest.raises(TypeError, match="metric name must be a string, got int"):
        m.log({3: 1.0})
    with pytest.raises(ValueError, match=r"tensor of shape \(2,\); log a one-element tensor"):
        m.log({"loss": torch.ones(2)})
    with pytest.raises(TypeError, match="log\\(\\) takes a mapping"):
        m.log([("loss", 1.0)])  # type: ignore[arg-type]
    list(it)
    assert list(_only_run().series("loss").values) == [1.0]


def test_constructor_validation() -> None:
    with pytest.raises(TypeError, match="needs an iterable .*got int"):
        TrainingMonitor(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="total must be an int >= 0 or None"):
        TrainingMonitor([], total=-1)
    with pytest.raises(TypeError, match="run must be a loopwise Run"):
        TrainingMonitor([], run="runs/x")  # type: ignore[arg-type]


def test_unwritable_log_file_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="cannot write log_file"):
        TrainingMonitor([], log_file=blocker / "train.csv", system=False)


def test_state_dict_round_trip() -> None:
    m = _monitor(range(3), record=False)
    for i in m:
        m.log({"loss": float(i)})
    other = _monitor(range(1), record=False)
    other.load_state_dict(m.state_dict())
    assert other.step == 3 and other.averages() == {"loss": 1.0}
    with pytest.raises(KeyError, match="missing 'averages'"):
        other.load_state_dict({"step": 1})


def test_record_false_writes_nothing(tmp_path: Path) -> None:
    m = _monitor(range(2), record=False)
    for _ in m:
        m.log({"loss": 1.0})
    assert m.run is None and not Path("runs").exists()


def test_health_findings_reach_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    m = TrainingMonitor(range(3), file=io.StringIO(), system=False)
    for _ in m:
        m.log({"loss": float("inf")})
    kinds = {e.kind for e in _only_run().events()}
    assert any(k.startswith("health.") for k in kinds), kinds


def test_a_rejected_log_call_records_none_of_its_values() -> None:
    m = _monitor(range(2))
    for _ in m:
        with pytest.raises(TypeError, match="metric 'bad' must be a real number"):
            m.log({"loss": 1.0, "acc": 0.5, "bad": "x"})
        m.log({"loss": 2.0, "lr": 0.1})
        # known keys, a bad value last: the values taken before it are taken back
        with pytest.raises(TypeError, match="metric 'lr' must be a real number"):
            m.log({"loss": 3.0, "lr": "fast"})
    reader = _only_run()
    assert list(reader.series("loss").values) == [2.0, 2.0]
    assert list(reader.series("lr").values) == [0.1, 0.1]
    assert "acc" not in reader.keys()


def test_an_int_too_big_for_a_float_is_refused_and_the_rest_kept() -> None:
    m = _monitor(range(2))
    for i in m:
        m.log({"loss": 1.0, "count": 7})
        if i == 1:
            with pytest.raises(ValueError, match="metric 'count' is an int too large for a "
                                                 "float64"):
                m.log({"loss": 5.0, "count": 10**400})
    reader = _only_run()
    assert list(reader.series("loss").values) == [1.0, 1.0]
    assert list(reader.series("count").values) == [7.0, 7.0]


def test_a_dict_reused_after_log_keeps_the_logged_values() -> None:
    m = _monitor(range(3), record=False)
    values = {"loss": 0.0}
    for i in m:
        values["loss"] = float(i)
        m.log(values)
    values["loss"] = 100.0
    assert m.averages() == {"loss": 1.0}


def test_values_carry_the_wall_time_of_their_step() -> None:
    before = time.time()
    m = _monitor(range(3))
    for _ in m:
        m.log({"loss": 1.0})
    times = list(_only_run().series("loss").times)
    assert before - 1 <= times[0] <= times[-1] <= time.time() + 1


def test_a_named_monitor_per_epoch_continues_its_run_and_global_step() -> None:
    # the loop users write: a new monitor per epoch, with a name (was FileExistsError at epoch 2)
    for _ in range(3):
        m = _monitor(range(4), name="exp")
        for _ in m:
            m.log({"loss": 1.0})
    assert m.step == 12
    m.close()
    assert [p.name for p in Path("runs").iterdir()] == ["exp"]
    reader = RunReader(Path("runs") / "exp")
    assert reader.status == "finished"
    assert list(reader.series("loss").steps) == list(range(1, 13))
    assert list(reader.series("epoch/loss").steps) == [4, 8, 12]


def test_a_val_monitor_with_another_root_validates_the_run_being_trained() -> None:
    # 2 epochs of train + val monitors: one run folder (was 4: the val monitor under its root
    # made a run, and the next training monitor did not find its own)
    for _ in range(2):
        train = _monitor(range(3))
        for _ in train:
            train.log({"loss": 1.0})
        val = _monitor(range(2), phase="val", root="elsewhere")
        for _ in val:
            val.log({"loss": 0.5})
    train.close()
    assert not Path("elsewhere").exists()
    reader = _only_run()
    assert reader.status == "finished"
    assert list(reader.series("epoch/loss").steps) == [3, 6]
    assert list(reader.series("epoch/val_loss").steps) == [3, 6]
