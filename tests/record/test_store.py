import contextlib
import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from loopwise.record import Run, RunReader
from loopwise.record.errors import DiskFullError
from loopwise.record.store import StoreWriter


def test_series_round_trip_preserves_order_and_nan(tmp_path: Path) -> None:
    with Run.create(tmp_path, "s") as run:
        for i in range(1000):
            run.log_scalars({"a": float(i), "b": -float(i)}, step=i)
        run.log_scalar("a", float("nan"), step=1000)
    s = RunReader(tmp_path / "s").series("a")
    assert list(s.steps[:1000]) == list(range(1000))
    assert list(s.values[:1000]) == [float(i) for i in range(1000)]
    assert s.values[1000] != s.values[1000]  # NaN kept as such


def test_many_small_flushes_are_merged_into_few_chunks(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "m", flush_interval=0.01)
    for i in range(300):
        run.log_scalar("x", float(i), step=i)
        run.flush()
    run.close()
    conn = sqlite3.connect(tmp_path / "m/store.sqlite")
    chunks = conn.execute("SELECT COUNT(*) FROM scalar_chunks").fetchone()[0]
    assert chunks < 20
    assert list(RunReader(tmp_path / "m").series("x").values) == [float(i) for i in range(300)]


def test_reader_reads_while_writer_writes(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "rw", flush_interval=0.01)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        reader = RunReader(tmp_path / "rw")
        while not stop.is_set():
            try:
                if "x" in reader.keys():
                    n = len(reader.series("x"))
                    assert not seen or n >= seen[-1]
                    seen.append(n)
            except BaseException as exc:
                errors.append(exc)
                return

    t = threading.Thread(target=read)
    t.start()
    for i in range(20_000):
        run.log_scalar("x", float(i), step=i)
        if i % 2000 == 0:
            time.sleep(0.02)
    run.close()
    stop.set()
    t.join()
    assert not errors
    assert len(seen) > 3 and seen[-1] <= 20_000
    assert len(RunReader(tmp_path / "rw").series("x")) == 20_000


def test_two_processes_write_two_runs_in_one_root(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from loopwise.record import Run
        with Run.create(sys.argv[1], sys.argv[2]) as run:
            for i in range(5000):
                run.log_scalar("x", float(i), step=i)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), n])
             for n in ("p1", "p2")]
    assert [p.wait(60) for p in procs] == [0, 0]
    for name in ("p1", "p2"):
        reader = RunReader(tmp_path / name)
        assert reader.status == "finished"
        assert len(reader.series("x")) == 5000


def test_backpressure_blocks_records_one_event_and_drops_nothing(tmp_path: Path) -> None:
    (tmp_path / "bp").mkdir()
    writer = StoreWriter(tmp_path / "bp/store.sqlite", flush_interval=1.0, max_pending=100)
    for i in range(5000):
        writer.add_scalars(i, 0.0, {"x": float(i)})
    writer.close()
    conn = sqlite3.connect(tmp_path / "bp/store.sqlite")
    kinds = [r[0] for r in conn.execute("SELECT kind FROM events")]
    assert kinds == ["store_backpressure"]
    total = conn.execute("SELECT SUM(n) FROM scalar_chunks").fetchone()[0]
    assert total == 5000


def test_writer_validates_options(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(ValueError, match=r"flush_interval must be in \(0, 1\] seconds"):
        StoreWriter(tmp_path / "s.sqlite", flush_interval=5.0)


def test_store_files_follow_the_umask_like_the_other_files(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        run = Run.create(tmp_path, "u")
        run.log_scalars({"loss": 1.0}, step=1)
        run.flush()
        modes = {p.name: p.stat().st_mode & 0o777 for p in run.path.iterdir()}
        run.close()
    finally:
        os.umask(old)
    assert modes["store.sqlite"] == 0o664, modes
    assert modes["store.sqlite-wal"] == modes["store.sqlite-shm"] == 0o664, modes
    assert modes["run.json"] == modes["log.jsonl"] == 0o664, modes


def _fill_store(run: Run, start: int, n: int) -> None:
    for i in range(start, start + n):
        run.log_scalars({"loss": float(i), f"k{i % 50}": 1.0}, step=i)
    run.flush()


def test_a_full_store_is_one_clear_error_and_the_run_is_marked_failed(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    run = Run.create(tmp_path, "full")
    _fill_store(run, 1, 10)
    # A real SQLITE_FULL: the database may not grow past its current size (the file "fake").
    with run._store._db_lock:
        pages = run._store._conn.execute("PRAGMA page_count").fetchone()[0]
        run._store._conn.execute(f"PRAGMA max_page_count = {pages}")
    store = run.path / "store.sqlite"
    message = (f"no space left on the device holding {store}; free space and resume (what was "
               "written before is kept and readable)")
    with pytest.raises(DiskFullError) as info:
        _fill_store(run, 11, 100_000)
    assert str(info.value) == message and info.value.errno == errno.ENOSPC
    assert json.loads((run.path / "run.json").read_text())["status"] == "failed"
    with pytest.raises(DiskFullError, match="no space left on the device holding"):
        run.log_scalars({"loss": 0.0}, step=10**6)  # every later log says so too
    run.close()  # the error was raised once already: close does not raise it again
    reader = RunReader(run.path)
    assert reader.info["status"] == "failed" and reader.info["error"] == message
    assert list(reader.series("loss").values) == [float(i) for i in range(1, 11)]
    assert "Logging error" not in capfd.readouterr().err


def test_disk_full_on_a_small_tmpfs(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False) if shutil.which(
        "mount") else None
    if mounted is None or mounted.returncode != 0:
        why = "no mount command" if mounted is None else mounted.stderr.strip()
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {why}")
    try:
        run = Run.create(disk, "r")
        _fill_store(run, 1, 10)
        with open(disk / "filler", "wb") as fh:  # take every byte left
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
        with pytest.raises(DiskFullError, match="no space left on the device holding "
                           f"{disk / 'r'}"):
            for k in range(100):
                run.log_event("tick", "x" * 1000)
                _fill_store(run, 11 + k * 10_000, 10_000)
        (disk / "filler").unlink()  # free space: the close records the failure
        run.close()
        reader = RunReader(run.path)
        assert reader.info["status"] == "failed"
        assert "no space left on the device holding" in reader.info["error"]
        assert list(reader.series("loss").values)[:10] == [float(i) for i in range(1, 11)]
        assert "Logging error" not in capfd.readouterr().err
    finally:
        if subprocess.run(["umount", str(disk)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=False)  # busy: detach it anyway


def test_the_writer_leaves_out_a_row_it_cannot_store_and_keeps_the_rest(
        tmp_path: Path) -> None:
    run = Run.create(tmp_path, "w", flush_interval=1.0)
    with run._store._db_lock:  # one flush window: 100 good rows around 3 bad ones
        for i in range(100):
            run._store.add_scalars(i, 1000.0 + i, {"loss": float(i)})
        run._store.add_scalars(2**63, 1.0, {"loss": 1.0})
        run._store.add_scalars(100, "x", {"loss": 1.0})  # type: ignore[arg-type]
        run._store.add_system(float("nan"), {"cpu_pct": 1.0})
        run._store.add_system(5.0, {"cpu_pct": 2.0})
    run.flush()
    run.log_scalar("loss", 7.0, step=101)
    run.close()
    reader = RunReader(run.path)
    assert reader.status == "finished"
    assert list(reader.series("loss").steps) == [*range(100), 101]
    assert reader.system() == [(5.0, "cpu_pct", 2.0)]
    (refused,) = reader.events(kind="store_rows_refused")
    assert refused.level == "error" and refused.data is not None
    assert refused.data["count"] == 3
    assert refused.message.startswith("3 logged item(s) could not be stored and were left out "
                                      "(the rest was kept): 'loss' at step 9223372036854775808")


def test_a_key_sqlite_cannot_store_is_left_out_and_a_new_key_beside_it_is_kept(
        tmp_path: Path) -> None:
    run = Run.create(tmp_path, "k", flush_interval=1.0)
    with run._store._db_lock:  # one batch: a new good key and a key SQLite refuses
        run._store.add_scalars(1, 1000.0, {"fresh": 1.0, "bad\udc80": 2.0})
        run._store.add_scalars(2, 1001.0, {"fresh": 3.0})
    run.flush()
    run.log_scalar("fresh", 4.0, step=3)
    run.close()
    reader = RunReader(run.path)
    assert reader.status == "finished" and reader.keys() == ["fresh"]
    assert list(reader.series("fresh").values) == [1.0, 3.0, 4.0]
    (refused,) = reader.events(kind="store_rows_refused")
    assert refused.message.startswith("1 logged item(s) could not be stored")
    assert "the values of 'bad\\udc80'" in refused.message
