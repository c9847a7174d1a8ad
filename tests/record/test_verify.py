"""The store's checksums: a changed byte in a series, the events or the system samples is
an error naming the run, the file and the part; the other parts still read; a store written
before checksums reads unverified."""

import sqlite3
import struct
from pathlib import Path

import pytest

from loopwise.record import Run, RunReader
from loopwise.record.verify import DamagedRecordError


def _run(root: Path, name: str = "r") -> Path:
    with Run.create(root, name) as run:
        for step in range(1, 201):
            run.log_scalars({"loss": 1.0 / step, "acc": step / 200}, step=step)
        run.log_event("note", "hello", data={"x": 1})
        run.log_system({"cpu_pct": 12.5, "ram_pct": float("nan")}, wall_time=50.0)
    assert not (root / name / "store.sqlite-wal").exists()  # all in the main file
    return root / name


def _flip(file: Path, needle: bytes, at: int = 0) -> None:
    data = bytearray(file.read_bytes())
    where = data.find(needle)
    assert where >= 0 and data.find(needle, where + 1) < 0
    data[where + at] ^= 0x10
    file.write_bytes(bytes(data))


def test_a_flipped_value_byte_names_the_run_file_and_series_and_the_others_read(
        tmp_path: Path) -> None:
    path = _run(tmp_path)
    store = path / "store.sqlite"
    _flip(store, struct.pack("<d", 1.0 / 7), at=3)
    reader = RunReader(path)
    with pytest.raises(DamagedRecordError) as info:
        reader.series("loss")
    assert str(info.value) == (
        f"{store} is corrupt (run 'r': series 'loss' failed its checksum); its bytes changed "
        "after they were written (a disk error, or an edit); the run's other series still "
        "read; restore the file from a backup to get it back")
    assert info.value.part == "series 'loss'" and info.value.run == "r"
    assert list(reader.series("acc").values)[:2] == [1 / 200, 2 / 200]
    assert set(reader.last_values()) == {"acc"}
    assert reader.events(kind="note")[0].data == {"x": 1}


def test_a_changed_event_or_system_sample_is_named(tmp_path: Path) -> None:
    path = _run(tmp_path)
    _flip(path / "store.sqlite", b"hello")
    with pytest.raises(DamagedRecordError,
                       match=r"run 'r': events \(rows 1-\d+\) failed its checksum"):
        RunReader(path).events()
    _flip(path / "store.sqlite", struct.pack(">d", 12.5), at=2)  # SQLite's REAL is big-endian
    with pytest.raises(DamagedRecordError,
                       match=r"run 'r': system samples \(rows \d+-\d+\) failed"):
        RunReader(path).system("cpu_pct")
    assert len(RunReader(path).series("loss")) == 200


def test_a_store_written_before_checksums_reads_unverified_and_grows_them(
        tmp_path: Path) -> None:
    path = _run(tmp_path)
    conn = sqlite3.connect(path / "store.sqlite")
    with conn:  # what a store of loopwise before checksums holds
        conn.execute("ALTER TABLE scalar_chunks DROP COLUMN sum")
        conn.execute("DROP TABLE row_sums")
    conn.close()
    reader = RunReader(path)
    assert len(reader.series("loss")) == 200 and reader.events(kind="note")
    assert len(reader.all_values()["loss"]) == 200  # the run table's read, unverified too
    assert reader.system("cpu_pct") == [(50.0, "cpu_pct", 12.5)]
    with Run.reopen(path) as run:  # resumed by this version: new chunks get their sums
        run.log_scalar("loss", 0.0, step=201)
    reader = RunReader(path)
    assert len(reader.series("loss")) == 201 and reader.events(kind="resumed")


def test_a_poller_checks_only_the_chunks_it_has_not_seen(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "live")
    run.log_scalar("loss", 1.0, step=1)
    run.flush()
    verified: set[tuple[int, int]] = set()
    assert RunReader(run.path).damaged_parts(verified=verified) == []
    first = set(verified)
    assert len(first) == 1
    run.log_scalar("loss", 2.0, step=2)
    run.flush()
    assert RunReader(run.path).damaged_parts(verified=verified) == []
    assert first < verified and len(verified) == 2  # the new chunk checked, the old one kept
    run.close()
