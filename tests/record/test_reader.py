import csv
import json
import socket
import time
from pathlib import Path

import pytest

from loopwise.record import Run, RunReader, downsample, list_runs
from loopwise.record.errors import CorruptRecordError
from loopwise.record.reader import resolve_status
from loopwise.record.series import Series


def _series(values: list[float]) -> Series:
    from array import array

    return Series("k", array("q", range(len(values))), array("d", [0.0] * len(values)),
                  array("d", values))


def test_downsample_keeps_spikes_and_bounds_size() -> None:
    values = [0.0] * 10_000
    values[4321] = 99.0
    values[7777] = -50.0
    out = downsample(_series(values), 100)
    assert len(out) <= 100
    assert 99.0 in out.values and -50.0 in out.values
    assert list(out.steps) == sorted(out.steps)
    assert 4321 in out.steps


def test_downsample_short_series_unchanged_and_validates() -> None:
    s = _series([1.0, 2.0])
    assert downsample(s, 10) is s
    with pytest.raises(ValueError, match="max_points must be an int >= 2"):
        downsample(s, 1)


def test_list_runs_newest_first_with_last_values(tmp_path: Path) -> None:
    for name in ("old", "new"):
        with Run.create(tmp_path, name) as run:
            run.log_scalar("loss", 1.0 if name == "old" else 0.5, step=1)
        time.sleep(0.01)
    runs = list_runs(tmp_path)
    assert [r.name for r in runs] == ["new", "old"]
    assert runs[0].last == {"loss": 0.5}
    assert runs[0].status == "finished" and runs[0].duration is not None


def test_list_runs_missing_root() -> None:
    with pytest.raises(FileNotFoundError, match="no runs folder at nowhere"):
        list_runs("nowhere")


def test_series_unknown_key_lists_known(tmp_path: Path) -> None:
    with Run.create(tmp_path, "k") as run:
        run.log_scalar("loss", 1.0, step=1)
    with pytest.raises(KeyError, match="no series 'los'; known keys: loss"):
        RunReader(tmp_path / "k").series("los")


def test_reader_refuses_non_run_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a loopwise run folder"):
        RunReader(tmp_path)


def test_events_filter_and_system(tmp_path: Path) -> None:
    with Run.create(tmp_path, "e") as run:
        run.log_event("a", "first", data={"n": 1})
        run.log_event("b", "second", level="warning")
        run.log_system({"cpu_pct": 10.0, "ram_pct": 20.0})
    r = RunReader(tmp_path / "e")
    assert [e.message for e in r.events(level="warning")] == ["second"]
    assert r.events(kind="a")[0].data == {"n": 1}
    assert sorted(n for _, n, _ in r.system()) == ["cpu_pct", "ram_pct"]
    assert r.system("cpu_pct")[0][2] == 10.0


def test_to_csv_one_row_per_step(tmp_path: Path) -> None:
    with Run.create(tmp_path, "c") as run:
        run.log_scalars({"loss": 1.0, "acc": 0.5}, step=1)
        run.log_scalar("loss", 0.5, step=2)
        run.log_scalar("val_loss", 0.7, step=2)
    out = RunReader(tmp_path / "c").to_csv(tmp_path / "c.csv")
    rows = list(csv.DictReader(out.open()))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert rows[1]["acc"] == "" and float(rows[1]["val_loss"]) == 0.7
    assert float(rows[0]["loss"]) == 1.0


def test_resolve_status_remote_host_uses_heartbeat() -> None:
    info = {"status": "running", "host": "elsewhere-" + socket.gethostname(), "pid": 1,
            "heartbeat": 1000.0}
    assert resolve_status(info, now=1010.0) == "running"
    assert resolve_status(info, now=2000.0) == "crashed"
    assert resolve_status({**info, "status": "finished"}, now=2000.0) == "finished"


def test_reused_pid_is_not_mistaken_for_the_writer(tmp_path: Path) -> None:
    with Run.create(tmp_path, "p") as run:
        pass
    info = json.loads((run.path / "run.json").read_text())
    info.update(status="running", pid_start=1.0)  # our pid, but another start time
    (run.path / "run.json").write_text(json.dumps(info))
    assert RunReader(run.path).status == "crashed"


def test_read_one_million_points(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "big")
    run.log_columns({"x": (list(range(1_000_000)), [0.0] * 1_000_000, [float(i) for i in range(1_000_000)])})
    run.close()
    s = RunReader(tmp_path / "big").series("x")
    assert len(s) == 1_000_000 and s.values[-1] == 999_999.0


def _good_run(root: Path, name: str) -> Path:
    with Run.create(root, name, config={"lr": 0.1}) as run:
        run.log_scalars({"loss": 0.5}, step=1)
    return run.path


@pytest.mark.parametrize(("content", "reason"), [
    ("[1, 2]", "it holds a JSON array, not an object"),
    ('"running"', "it holds a JSON string, not an object"),
    ("", "not JSON: Expecting value at line 1 column 1"),
    ('{"name": "x"', "not JSON: Expecting ',' delimiter at line 1 column 13"),
])
def test_a_corrupt_run_json_names_the_file_and_hides_no_other_run(
        tmp_path: Path, content: str, reason: str) -> None:
    good = _good_run(tmp_path, "good")
    bad = _good_run(tmp_path, "bad")
    (bad / "run.json").write_text(content)
    with pytest.raises(CorruptRecordError) as info:
        _ = RunReader(bad).info
    assert str(info.value) == (f"{bad / 'run.json'} is corrupt ({reason}); loopwise cannot read "
                               "this run's status; restore it from a backup, or move the run "
                               "folder out of the runs root")
    assert info.value.path == bad / "run.json"
    listed = {r.name: r for r in list_runs(tmp_path)}
    assert listed["good"].status == "finished" and listed["good"].path == good
    assert listed["bad"].status == "corrupt" and listed["bad"].problem == str(info.value)


def test_a_garbage_or_truncated_store_names_the_file(tmp_path: Path) -> None:
    run = _good_run(tmp_path, "trunc")
    store = run / "store.sqlite"
    data = store.read_bytes()
    store.write_bytes(data[:100])
    with pytest.raises(CorruptRecordError, match=r"trunc/store\.sqlite is corrupt \(SQLite: "
                       r".*\); the run's series and events cannot be read; restore it"):
        RunReader(run).keys()
    store.write_bytes(b"this is not a database" * 100)
    reader = RunReader(run)
    for call in (reader.keys, reader.last_values, reader.events, reader.system,
                 lambda: reader.series("loss")):
        with pytest.raises(CorruptRecordError, match=r"store\.sqlite is corrupt \(SQLite: file "
                           "is not a database\\)"):
            call()
    [info] = list_runs(tmp_path)
    assert info.status == "corrupt" and "store.sqlite is corrupt" in str(info.problem)


def test_a_corrupt_config_names_the_file(tmp_path: Path) -> None:
    run = _good_run(tmp_path, "cfg")
    (run / "config.json").write_text("{lr: 0.1}")
    with pytest.raises(CorruptRecordError) as info:
        RunReader(run).config()
    assert str(info.value) == (
        f"{run / 'config.json'} is corrupt (not JSON: Expecting property name enclosed in "
        "double quotes at line 1 column 2); it holds the run's parameters: repair it, or "
        "delete it to read the run without them")
    (run / "config.json").write_bytes(b"\xff\xfe")
    with pytest.raises(CorruptRecordError, match="is corrupt \\(not UTF-8 text: invalid start"):
        RunReader(run).config()
    assert list_runs(tmp_path)[0].status == "finished"  # listing does not read the config


def test_a_nan_system_value_reads_back_as_nan(tmp_path: Path) -> None:
    with Run.create(tmp_path, "n") as run:
        run.log_system({"cpu_pct": float("nan"), "ram_pct": 5.0}, wall_time=100.0)
        run.log_system({"cpu_pct": 3.0}, wall_time=101.0)
    rows = RunReader(tmp_path / "n").system()
    assert [(t, n) for t, n, _ in rows] == [(100.0, "cpu_pct"), (100.0, "ram_pct"),
                                           (101.0, "cpu_pct")]
    assert rows[0][2] != rows[0][2] and [v for *_, v in rows[1:]] == [5.0, 3.0]
    assert RunReader(tmp_path / "n").system("cpu_pct")[1] == (101.0, "cpu_pct", 3.0)


def test_series_holds_each_step_once_the_later_value_winning(tmp_path: Path) -> None:
    with Run.create(tmp_path, "r") as run:  # killed at step 24, resumed from step 10
        for step in range(1, 25):
            run.log_scalar("loss", float(step), step=step)
        run.flush()
        for step in range(11, 31):
            run.log_scalar("loss", 100.0 + step, step=step)
    series = RunReader(tmp_path / "r").series("loss")
    assert list(series.steps) == list(range(1, 31))
    assert list(series.values) == [float(s) for s in range(1, 11)] + [
        100.0 + s for s in range(11, 31)]
    assert len(series.times) == len(series.epochs) == 30
