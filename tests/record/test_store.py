import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from loopwise.record import Run, RunReader
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
