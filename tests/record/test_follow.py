"""The follower every exporter reads a run through: live, while the store commits and merges its
chunks, it hands over every point once and in order; events get the step they happened at."""

from __future__ import annotations

import sqlite3

import pytest

from loopwise.record import Run
from loopwise.record.follow import Cursor, Follower
from loopwise.record.storefile import MERGE_AFTER


def _read_all(follower: Follower, out: dict, limit: int = 50_000) -> int:
    inc = follower.read(limit)
    for key, (steps, _, values) in inc.columns.items():
        out.setdefault(key, []).extend(zip(steps, values))
    out.setdefault("_events", []).extend(inc.events)
    out.setdefault("_system", []).extend(inc.system)
    return inc.points


def test_a_live_follower_gets_every_point_once_while_the_store_merges_chunks(tmp_path):
    run = Run.create(tmp_path / "runs")
    follower = Follower(run.path)
    got: dict = {}
    step = 0
    for _ in range(3 * MERGE_AFTER):  # many small commits: the writer merges them in place
        for _ in range(7):
            step += 1
            run.log_scalars({"loss": 1.0 / step, "acc": step / 1000}, step=step)
        run.flush()
        _read_all(follower, got, limit=5)  # small reads: the cursor stops inside chunks
    while _read_all(follower, got):
        pass
    with sqlite3.connect(run.path / "store.sqlite") as conn:
        chunks = conn.execute("SELECT COUNT(*) FROM scalar_chunks").fetchone()[0]
    run.close()
    assert chunks < 3 * MERGE_AFTER  # the rows the follower read were merged under it
    assert got["loss"] == [(s, 1.0 / s) for s in range(1, step + 1)]
    assert [s for s, _ in got["acc"]] == list(range(1, step + 1))


def test_events_get_the_step_they_happened_at_and_samples_come_back_whole(tmp_path):
    run = Run.create(tmp_path / "runs")
    follower = Follower(run.path)
    for step in range(1, 11):
        run.log_scalars({"loss": float(step)}, step=step)
    run.log_event("checkpoint_saved", "saved")  # after step 10
    run.log_event("health.spike", "spiked", level="warning", data={"step": 4})
    run.log_system({"cpu_pct": 10.0, "ram_pct": 20.0}, wall_time=1_800_000_000.0)
    run.log_system({"cpu_pct": 11.0, "ram_pct": 21.0}, wall_time=1_800_000_002.0)
    run.flush()
    got: dict = {}
    _read_all(follower, got)
    for step in range(11, 21):
        run.log_scalars({"loss": float(step)}, step=step)
    run.log_event("checkpoint_saved", "saved again")
    run.flush()
    _read_all(follower, got)
    run.close()
    saved = [e.step for e in got["_events"] if e.kind == "checkpoint_saved"]
    assert saved == [10, 20]
    assert [e.step for e in got["_events"] if e.kind == "health.spike"] == [4]
    assert [(s.time, dict(s.values)) for s in got["_system"]] == [
        (1_800_000_000.0, {"cpu_pct": 10.0, "ram_pct": 20.0}),
        (1_800_000_002.0, {"cpu_pct": 11.0, "ram_pct": 21.0})]


def test_a_cursor_at_the_end_skips_what_was_committed_before(tmp_path):
    run = Run.create(tmp_path / "runs")
    run.log_scalars({"loss": 1.0}, step=1)
    run.log_event("early", "before the mirror")
    run.flush()
    end = Follower(run.path).end()
    cursor = Cursor()
    cursor.load_state_dict(end.state_dict())  # what a delivery process is handed
    follower = Follower(run.path, cursor)
    run.log_scalars({"loss": 2.0}, step=2)
    run.flush()
    got: dict = {}
    _read_all(follower, got)
    assert got["loss"] == [(2, 2.0)] and got["_events"] == []
    assert follower.remaining() == 0
    run.log_scalars({"loss": 3.0, "acc": 0.5}, step=3)
    run.flush()
    assert follower.remaining() == 2
    run.log_event("exporter_recovered", "delivering again")  # a mirror's note of itself
    run.log_event("nan_loss", "loss is nan at step 3")
    run.flush()
    assert follower.remaining() == 3  # the user's event counts, the mirror's own note does not
    run.close()
    with pytest.raises(ValueError, match=r"state\['points'\]\['loss'\] must be an int >= 0 "
                                         r"\(points delivered\), got -1"):
        Cursor().load_state_dict({"points": {"loss": -1}})


def test_a_nan_system_value_is_delivered_as_nan(tmp_path):
    with Run.create(tmp_path / "runs", "n") as run:
        run.log_system({"cpu_pct": float("nan"), "ram_pct": 1.0}, wall_time=1_800_000_000.0)
    got: dict = {}
    _read_all(Follower(run.path), got)
    (sample,) = got["_system"]
    assert sample.values["cpu_pct"] != sample.values["cpu_pct"] and sample.values["ram_pct"] == 1


def test_a_damaged_chunk_is_never_handed_out_and_the_read_names_its_series(tmp_path):
    import struct

    from loopwise.record.verify import DamagedRecordError

    with Run.create(tmp_path, "r") as run:
        for step in range(1, 201):
            run.log_scalars({"loss": 1.0 / step, "acc": step / 200}, step=step)
    store = tmp_path / "r" / "store.sqlite"
    data = bytearray(store.read_bytes())
    data[data.find(struct.pack("<d", 1.0 / 7)) + 3] ^= 0x10
    store.write_bytes(bytes(data))
    follower = Follower(tmp_path / "r")
    got = follower.read()
    assert set(got.columns) == {"acc"} and len(got.columns["acc"][0]) == 200
    assert [type(d) for d in got.damage] == [DamagedRecordError]
    assert str(got.damage[0]).startswith(f"{store} is corrupt (run 'r': series 'loss' failed")
    again = follower.read()  # said once, never delivered later
    assert again.columns == {} and again.damage == [] and follower.remaining() == 0
    follower.close()


def test_a_damaged_event_or_sample_batch_is_left_out_named_and_the_rest_flows(tmp_path):
    import struct

    from loopwise.record.verify import DamagedRecordError

    follower = Follower(tmp_path / "r")
    with Run.create(tmp_path, "r") as run:  # each flush commits one batch per table
        run.log_scalars({"loss": 1.0}, step=1)
        run.log_event("note", "first batch hello", data={"n": 1})
        run.log_system({"cpu_pct": 12.5}, wall_time=1_800_000_000.0)
        run.flush()
        got: dict = {}
        _read_all(follower, got, limit=1)  # a read cut inside the first batches
        run.log_scalars({"loss": 2.0}, step=2)
        run.log_event("note", "second batch", data={"n": 2})
        run.log_system({"cpu_pct": 33.0}, wall_time=1_800_000_001.0)
        follower.close()  # before the run closes: its store is checkpointed into one file
    store = tmp_path / "r" / "store.sqlite"
    data = bytearray(store.read_bytes())
    for needle, at in ((b"first batch hello", 0), (struct.pack(">d", 12.5), 2)):
        where = data.find(needle)
        assert where >= 0 and data.find(needle, where + 1) < 0
        data[where + at] ^= 0x10  # one flipped bit, as a disk gives
    store.write_bytes(bytes(data))

    follower = Follower(tmp_path / "r")
    inc = follower.read(limit=1)  # small reads: a batch is still checked whole
    damage = list(inc.damage)
    reads = [inc]
    while inc.points or inc.damage:
        inc = follower.read(limit=1)
        damage += inc.damage
        reads.append(inc)
    follower.close()
    events = [e for i in reads for e in i.events]
    samples = [s for i in reads for s in i.system]
    assert all(type(d) is DamagedRecordError for d in damage)
    assert sorted(d.part for d in damage) == ["events", "system samples"]
    said = sorted(str(d) for d in damage)
    assert said[0].startswith(f"{store} is corrupt (run 'r': events (rows 1-")
    assert said[1].startswith(f"{store} is corrupt (run 'r': system samples (rows 1-1) failed "
                              "its checksum)")
    # the damaged batches are never handed out; the later ones and every series still are
    assert "first batch hello" not in [e.message for e in events]
    assert [e.data for e in events if e.kind == "note"] == [{"n": 2}]
    assert [(s.time, dict(s.values)) for s in samples] == [
        (1_800_000_001.0, {"cpu_pct": 33.0})]
    assert [v for i in reads if "loss" in i.columns for v in i.columns["loss"][2]] == [1.0, 2.0]
