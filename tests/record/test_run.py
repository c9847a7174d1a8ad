import errno
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from loopwise.record import Run, RunReader, list_runs
from loopwise.record.errors import DiskFullError


def test_create_writes_run_json_with_provenance(tmp_path: Path) -> None:
    with Run.create(tmp_path / "runs", "exp", config={"lr": 0.1}) as run:
        info = json.loads((run.path / "run.json").read_text())
        assert info["status"] == "running"
        for key in ("id", "name", "start_time", "heartbeat", "host", "pid", "argv", "python",
                    "torch", "loopwise"):
            assert key in info, key
        assert info["pid"] == os.getpid()
    assert json.loads((tmp_path / "runs/exp/config.json").read_text()) == {"lr": 0.1}
    assert RunReader(tmp_path / "runs/exp").info["status"] == "finished"


def test_two_runs_never_share_a_folder(tmp_path: Path) -> None:
    a = Run.create(tmp_path, "same")
    with pytest.raises(FileExistsError, match="a run named 'same' already exists"):
        Run.create(tmp_path, "same")
    names = {Run.create(tmp_path).name for _ in range(5)}
    assert len(names) == 5
    a.close()


def test_bad_config_is_refused_by_key_and_nothing_created(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"config\['model'\] = .*cannot be stored as JSON"):
        Run.create(tmp_path, "x", config={"model": object()})
    assert not (tmp_path / "x").exists()


def test_set_config_error_keeps_previous_config(tmp_path: Path) -> None:
    with Run.create(tmp_path, "c", config={"a": 1}) as run:
        with pytest.raises(ValueError, match=r"config\['b'\] = inf"):
            run.set_config({"b": float("inf")})
    assert json.loads((tmp_path / "c/config.json").read_text()) == {"a": 1}


def test_exception_marks_failed_with_traceback_event(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), Run.create(tmp_path, "f") as run:
        run.log_scalar("loss", 1.0, step=1)
        1 / 0
    reader = RunReader(tmp_path / "f")
    assert reader.status == "failed"
    assert "ZeroDivisionError" in reader.info["error"]
    assert reader.events(kind="exception")[0].level == "error"
    assert list(reader.series("loss").values) == [1.0]


def test_ctrl_c_marks_interrupted(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), Run.create(tmp_path, "k"):
        raise KeyboardInterrupt
    assert RunReader(tmp_path / "k").status == "interrupted"


def test_logging_after_close_is_an_error(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "closed")
    run.close()
    run.close()  # idempotent
    with pytest.raises(RuntimeError, match="is closed"):
        run.log_scalar("x", 1.0, step=0)


def test_bad_arguments_are_specific(tmp_path: Path) -> None:
    with Run.create(tmp_path, "bad") as run:
        with pytest.raises(TypeError, match="step must be an int, got float"):
            run.log_scalars({"x": 1.0}, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="value of 'x' must be a real number"):
            run.log_scalars({"x": "1"}, step=1)  # type: ignore[dict-item]
        with pytest.raises(ValueError, match="event level must be one of"):
            run.log_event("k", "m", level="loud")
        with pytest.raises(ValueError, match="closes as 'finished', 'failed' or 'interrupted'"):
            run.close("crashed")
        run.log_scalar("x", 2.0, step=1)
    assert list(RunReader(tmp_path / "bad").series("x").values) == [2.0]


def test_on_close_hooks_run_in_reverse_and_errors_are_recorded(tmp_path: Path) -> None:
    calls: list[str] = []
    run = Run.create(tmp_path, "hooks")
    run.on_close(lambda: calls.append("first"))

    def broken() -> None:
        raise RuntimeError("sampler broke")

    run.on_close(broken)
    run.on_close(lambda: calls.append("last"))
    run.close()
    assert calls == ["last", "first"]
    assert "sampler broke" in RunReader(run.path).events(kind="close_error")[0].message


def test_reopen_continues_the_run(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "r")
    run.log_scalar("loss", 1.0, step=1)
    run.advance(1)
    run.close("interrupted")
    again = Run.reopen(tmp_path / "r")
    assert again.global_step == 1 and again.id == run.id
    again.log_scalar("loss", 0.5, step=2)
    again.close()
    reader = RunReader(tmp_path / "r")
    assert list(reader.series("loss").values) == [1.0, 0.5]
    assert reader.events(kind="resumed")[0].data == {"previous_status": "interrupted"}
    assert reader.info["resumes"][0]["previous_status"] == "interrupted"


def test_reopen_after_a_crash_continues_after_the_last_recorded_step(tmp_path: Path) -> None:
    """run.json's step and epoch are refreshed every heartbeat; a run killed in between must
    not reuse the steps its record already holds."""
    run = Run.create(tmp_path, "r")
    run.log_columns({"loss": ([1, 2, 3, 40], [0.0] * 4, [1.0, 0.9, 0.8, 0.7])})
    run.log_epoch(2, {"loss": 0.7}, step=40)
    run.close("failed")
    info = json.loads((tmp_path / "r/run.json").read_text())
    info.update(global_step=3, epoch=1)  # as a SIGKILL between two heartbeats leaves it
    (tmp_path / "r/run.json").write_text(json.dumps(info))
    again = Run.reopen(tmp_path / "r")
    assert again.global_step == 40
    assert again.epoch == 2
    again.close()


def test_a_flushed_run_writes_its_step_to_run_json_off_the_callers_thread(
        tmp_path: Path) -> None:
    run = Run.create(tmp_path, "r", flush_interval=0.05)
    run.advance(7)
    run.flush()
    deadline = time.monotonic() + 30
    while json.loads((tmp_path / "r/run.json").read_text()).get("global_step") != 7:
        assert time.monotonic() < deadline, "run.json never got the flushed step"
        time.sleep(0.02)
    run.close()


def test_reopen_refuses_non_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a loopwise run folder"):
        Run.reopen(tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken/run.json").write_text("{not json")
    with pytest.raises(ValueError, match="run.json is corrupt"):
        Run.reopen(tmp_path / "broken")
    assert (tmp_path / "broken/run.json").read_text() == "{not json"


def test_heartbeat_refreshes(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "hb", heartbeat_interval=0.05, flush_interval=0.02)
    first = json.loads((run.path / "run.json").read_text())["heartbeat"]
    deadline = time.time() + 5
    while time.time() < deadline:
        if json.loads((run.path / "run.json").read_text())["heartbeat"] > first:
            break
        time.sleep(0.02)
    else:
        pytest.fail("heartbeat never refreshed")
    run.close()


CHILD = textwrap.dedent(
    """
    import sys, time
    from loopwise.record import Run
    run = Run.create(sys.argv[1], "victim")
    step = 0
    while True:
        step += 1
        run.log_scalar("x", float(step), step=step)
        if step % 100 == 0:
            print(step, time.time(), flush=True)
        time.sleep(0.0005)
    """
)


def test_sigkill_keeps_values_older_than_one_second_and_reads_crashed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    marks: list[tuple[int, float]] = []
    start = time.time()
    while time.time() - start < 3.0:
        line = proc.stdout.readline()
        step, t = line.split()
        marks.append((int(step), float(t)))
    kill_time = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    must_have = max(s for s, t in marks if t < kill_time - 1.0)
    reader = RunReader(tmp_path / "victim")
    values = reader.series("x").values
    assert len(values) >= must_have
    assert list(values[:must_have]) == [float(i) for i in range(1, must_have + 1)]
    assert reader.status == "crashed"
    assert list_runs(tmp_path)[0].status == "crashed"


def test_unclosed_run_is_closed_at_exit_by_how_the_process_ended(tmp_path: Path) -> None:
    code = "import sys; from loopwise.record import Run; r = Run.create(sys.argv[1], sys.argv[2])"
    subprocess.run([sys.executable, "-c", code, str(tmp_path), "ok"], check=True)
    failing = code + "; raise ValueError('bad data')"
    subprocess.run([sys.executable, "-c", failing, str(tmp_path), "bad"], capture_output=True)
    assert RunReader(tmp_path / "ok").status == "finished"
    bad = RunReader(tmp_path / "bad")
    assert bad.status == "failed"
    assert "ValueError: bad data" in bad.info["error"]


def test_events_and_epochs_go_to_the_json_log_too(tmp_path: Path) -> None:
    from loopwise.record.jsonlog import read_json_log

    with Run.create(tmp_path, "j") as run:
        run.advance(40)
        run.log_event("note", "hello", data={"a": 1})
        run.log_epoch(2, {"train_loss": 0.5, "val_loss": float("nan")})
        with pytest.raises(ValueError, match="epoch must be an int >= 0, got -1"):
            run.log_epoch(-1, {"x": 1.0})
    lines = read_json_log(tmp_path / "j/log.jsonl")
    assert [line["type"] for line in lines] == ["event", "metrics", "event"]
    assert lines[0]["kind"] == "note" and lines[0]["data"] == {"a": 1}
    assert lines[1]["epoch"] == 2 and lines[1]["step"] == 40
    assert lines[1]["values"] == {"train_loss": 0.5, "val_loss": None}
    assert lines[2]["kind"] == "closed"
    reader = RunReader(tmp_path / "j")
    # an epoch summary sits at the global step where the epoch ended, and carries its epoch
    loss = reader.series("epoch/train_loss")
    assert list(loss.steps) == [40] and list(loss.epochs) == [2]
    assert list(reader.series("epoch").values) == [2.0]
    assert reader.stats()["epoch/train_loss"].last == 0.5


class _FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")


def test_a_full_disk_under_the_json_log_fails_the_run_once(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    run = Run.create(tmp_path, "quota")
    run.log_scalars({"loss": 1.0}, step=1)
    run._jsonlog._handler.stream = _FullDisk()  # the user's quota runs out (a fake file)
    with pytest.raises(DiskFullError, match=r"^no space left on the device holding .*quota/"
                       r"log\.jsonl; free space and resume"):
        run.log_event("note", "m")
    assert json.loads((run.path / "run.json").read_text())["status"] == "failed"
    run.close()  # finished is asked for, but the run failed: failed it stays
    reader = RunReader(run.path)
    assert reader.info["status"] == "failed"
    assert reader.info["error"].startswith("no space left on the device holding")
    assert list(reader.series("loss").values) == [1.0]
    assert [e.kind for e in reader.events(level="error")] == ["exception"]
    assert "Logging error" not in capfd.readouterr().err


def test_heartbeat_thread_and_caller_never_write_run_json_at_once(tmp_path: Path) -> None:
    # the heartbeat (store thread) rewrites run.json every tick while the caller adds fields:
    # both serialise the same dict, so they take one lock (unlocked, json.dumps saw the dict
    # change size mid-iteration and the store thread died)
    run = Run.create(tmp_path, "hb", flush_interval=0.001, heartbeat_interval=1e-6)
    for i in range(600):
        run.set_info(**{f"field{i % 300}": i})
        if i % 100 == 0:
            run.log_scalar("x", float(i), step=i)
    run.close()
    info = RunReader(tmp_path / "hb").info
    assert info["status"] == "finished" and info["field299"] == 599
    assert list(RunReader(tmp_path / "hb").series("x").steps) == [0, 100, 200, 300, 400, 500]


def test_a_run_whose_folder_was_removed_is_said_in_one_line_at_exit(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import shutil, sys
        from loopwise.record import Run
        run = Run.create(sys.argv[1], name="gone")
        run.log_scalars({"loss": 1.0}, step=1)
        shutil.rmtree(run.path)
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "run 'gone' was not closed and its folder" in proc.stderr
    assert "is gone" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_epoch_summaries_of_a_run_whose_step_never_advanced_keep_one_point_each(
        tmp_path: Path) -> None:
    from loopwise.cli import main
    from loopwise.train.reference import TrainingMetrics

    run = Run.create(tmp_path, "epochs-only")
    for epoch in range(1, 6):
        run.log_epoch(epoch, {"loss": 1.0 / epoch})
    run.close()
    series = RunReader(run.path).series("epoch/loss")
    assert list(series.steps) == [1, 2, 3, 4, 5] and list(series.epochs) == [1, 2, 3, 4, 5]
    out = tmp_path / "e.csv"
    assert main(["export", str(run.path), str(out)]) == 0
    assert len(out.read_text().splitlines()) == 1 + 5  # the header and every epoch
    other = Run.create(tmp_path, "metrics")
    metrics = TrainingMetrics(run=other)
    for epoch in range(1, 6):
        metrics.update(epoch, 1.0 / epoch, val_loss=2.0 / epoch)
    other.close()
    assert list(RunReader(other.path).series("epoch/val_loss").steps) == [1, 2, 3, 4, 5]


def _unborn(root: Path, name: str) -> Path:
    """A run killed (SIGKILL) between its folder's creation and its run.json."""
    code = textwrap.dedent(f"""
        import os, signal
        from loopwise.record import run as run_module
        acquire = run_module.RunLock.acquire
        def acquire_then_die(folder):
            acquire(folder)
            os.kill(os.getpid(), signal.SIGKILL)
        run_module.RunLock.acquire = acquire_then_die
        run_module.Run.create({str(root)!r}, {name!r})
    """)
    done = subprocess.run([sys.executable, "-c", code], check=False)
    assert done.returncode == -signal.SIGKILL
    folder = root / name
    assert sorted(p.name for p in folder.iterdir()) == ["writer.lock"]
    return folder


def test_a_run_killed_before_its_run_json_is_reused_by_the_next_create(tmp_path: Path) -> None:
    from loopwise.train.fit.runplan import plan_run

    folder = _unborn(tmp_path, "exp")
    with Run.create(tmp_path, "exp", config={"lr": 0.1}) as run:
        run.log_scalar("loss", 1.0, step=1)
    assert run.path == folder and RunReader(folder).status == "finished"
    with pytest.raises(FileExistsError, match="a run named 'exp' already exists"):
        Run.create(tmp_path, "exp")  # a born run is never reused
    unborn = _unborn(tmp_path, "fit")
    plan = plan_run(tmp_path, "fit", {"lr": 0.1}, model_name="m")
    assert plan.action == "new" and plan.path == unborn and plan.run is not None
    plan.run.close()
    assert [r.name for r in list_runs(tmp_path)] and "fit" in {r.name for r in list_runs(
        tmp_path)}
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="a run named 'other' already exists"):
        Run.create(tmp_path, "other")  # a folder holding anything else is not unborn
