"""The corruption campaign: run.json, config.json, store.sqlite, args.json, checkpoints and
manifests truncated, bit-flipped, emptied, filled with garbage or deleted.

Each damage must be detected with a message naming the file; checkpoints fall back to the
previous verified one; no damaged file is overwritten silently; one bad run folder never hides
the others in ``loopwise runs`` or the dashboard's runs API.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from loopwise.checkpoint.errors import CheckpointError
from loopwise.checkpoint.manager import CheckpointManager
from loopwise.record import Run, RunReader, list_runs
from loopwise.record.errors import CorruptRecordError

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _bitflip(p: Path) -> None:
    """Flip one bit of a byte the format depends on: the first (JSON: the opening brace; a
    checkpoint: the zip magic), or for SQLite its header's page size."""
    data = bytearray(p.read_bytes())
    at = 16 if data.startswith(b"SQLite format 3") else 0
    data[at] ^= 0x04
    p.write_bytes(bytes(data))


def _bitflip_middle(p: Path) -> None:
    """Flip one bit in the middle of the file (a checkpoint's tensor data)."""
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _garbage(p: Path) -> None:
    p.write_bytes(bytes(range(256)) * 12)


def _missing(p: Path) -> None:
    p.unlink()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate, "bit-flipped": _bitflip, "empty": _empty, "garbage": _garbage}


def _run(root: Path, name: str) -> Path:
    with Run.create(root, name, config={"lr": 0.1}) as run:
        for step in range(1, 300):
            run.log_scalars({"loss": 1.0 / step}, step=step)
        run.log_event("note", "a note")
    for leftover in ("store.sqlite-wal", "store.sqlite-shm"):
        (root / name / leftover).unlink(missing_ok=True)
    return root / name


def _read_all(folder: Path) -> None:
    reader = RunReader(folder)
    reader.info
    reader.config()
    reader.series("loss")
    reader.events()


# -- the record's files ---------------------------------------------------------------------
# an empty store.sqlite is an empty SQLite database: it reads as a run with no series yet
RECORD = [(f, d) for f in ("run.json", "config.json", "store.sqlite") for d in DAMAGE
          if (f, d) != ("store.sqlite", "empty")]


@pytest.mark.parametrize(("file", "damage"), RECORD)
def test_a_damaged_record_file_is_named_and_left_as_it_was(tmp_path: Path, file: str,
                                                           damage: str) -> None:
    folder = _run(tmp_path / "runs", "bad")
    DAMAGE[damage](folder / file)
    before = (folder / file).read_bytes()
    with pytest.raises(CorruptRecordError) as caught:
        _read_all(folder)
    assert caught.value.path == folder / file
    assert str(folder / file) in str(caught.value) and "corrupt" in str(caught.value)
    # a writer refuses to continue the run rather than write over what it cannot read
    if file != "store.sqlite":
        with pytest.raises(CorruptRecordError, match=file.replace(".", r"\.")):
            Run.reopen(folder)
    assert (folder / file).read_bytes() == before


@pytest.mark.parametrize(("file", "damage"), RECORD)
def test_one_bad_run_never_hides_the_others(tmp_path: Path, file: str, damage: str) -> None:
    root = tmp_path / "runs"
    _run(root, "good-1")
    folder = _run(root, "bad")
    _run(root, "good-2")
    DAMAGE[damage](folder / file)
    listed = {info.name: info for info in list_runs(root)}
    assert set(listed) == {"good-1", "bad", "good-2"}
    assert listed["good-1"].status == listed["good-2"].status == "finished"
    if file != "config.json":  # the run's status and last values cannot be read
        assert listed["bad"].status == "corrupt"
        assert str(folder / file) in str(listed["bad"].problem)
    cli = subprocess.run([sys.executable, "-m", "loopwise", "runs", str(root)],
                         capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200"})
    assert cli.returncode == 0, cli.stderr
    assert "good-1" in cli.stdout and "good-2" in cli.stdout and "bad" in cli.stdout


@pytest.mark.parametrize(("file", "damage"), RECORD)
def test_the_dashboard_lists_every_run_and_names_the_bad_file(tmp_path: Path, file: str,
                                                              damage: str) -> None:
    pytest.importorskip("starlette", reason="the dashboard needs starlette")
    from starlette.testclient import TestClient

    from loopwise.view.dashboard.app import create_app

    root = tmp_path / "runs"
    _run(root, "good")
    folder = _run(root, "bad")
    DAMAGE[damage](folder / file)
    client = TestClient(create_app(root), base_url="http://127.0.0.1")
    runs = client.get("/api/runs")
    assert runs.status_code == 200, runs.text
    status = {r["name"]: r["status"] for r in runs.json()}
    assert status == {"good": "finished",
                      "bad": "finished" if file == "config.json" else "corrupt"}
    # the API, the run table page's rows and `loopwise runs` agree, and each names the file
    problem = {r["name"]: r["problem"] for r in runs.json()}
    assert problem["good"] is None and str(folder / file) in problem["bad"]
    table = {r["name"]: r for r in client.get("/api/table").json()["rows"]}
    assert {n: r["status"] for n, r in table.items()} == status
    assert str(folder / file) in table["bad"]["problem"]
    cli = subprocess.run([sys.executable, "-m", "loopwise", "runs", str(root)],
                         capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "PYTHONPATH": SRC, "COLUMNS": "400"})
    assert cli.returncode == 0, cli.stderr
    assert f"bad  {status['bad']}  {folder / file}" in cli.stdout
    assert client.get("/api/runs/good").status_code == 200
    one = client.get("/api/runs/bad")  # cannot be shown whole: the answer names the file
    assert one.status_code == 400 and str(folder / file) in one.json()["error"]
    series = client.get("/api/runs/bad/series/loss")
    if file == "store.sqlite":
        assert series.status_code == 400 and str(folder / file) in series.json()["error"]
    else:  # what the intact files hold is still served
        assert series.status_code == 200 and series.json()["total"] == 299


def test_args_json_damaged_is_an_error_naming_it_and_left_as_it_was(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from _workflow_toy import ARGS, ToyTrainer

    from loopwise.train.workflow.runner import Workflow

    Workflow(ToyTrainer(dict(ARGS)), tmp_path, 1, "exp", system=False).run()
    args = tmp_path / "exp" / "args.json"
    for damage in DAMAGE.values():
        args.write_text(json.dumps(ARGS))
        damage(args)
        before = args.read_bytes()
        with pytest.raises((CorruptRecordError, ValueError), match="args.json"):
            Workflow(ToyTrainer(None), tmp_path, 2, "exp", system=False).run()
        assert args.read_bytes() == before


# -- checkpoints and manifests --------------------------------------------------------------
CKPT_DAMAGE = {**DAMAGE, "bit-flipped": _bitflip_middle, "missing": _missing}


def _manager_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    manager = CheckpointManager(folder, keep_last=3)
    for step in (10, 20, 30):
        manager.save({"w": torch.full((64, 64), float(step))}, step=step)
    return folder


@pytest.mark.parametrize("damage", CKPT_DAMAGE)
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_verified_one(
        tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    folder = _manager_folder(tmp_path)
    newest = folder / "checkpoint-step00000030.pt"
    CKPT_DAMAGE[damage](newest)
    before = newest.read_bytes() if newest.exists() else None
    manager = CheckpointManager(folder, keep_last=3)
    state = manager.load_latest()
    assert state is not None and torch.equal(state["w"], torch.full((64, 64), 20.0))
    assert str(newest) in caplog.text  # the warning names the file
    problems = [c for c in manager.verify() if not c.ok]
    assert [c.path for c in problems] == [newest]
    assert (newest.read_bytes() if newest.exists() else None) == before


def test_every_checkpoint_damaged_is_an_error_listing_them_never_a_fresh_start(
        tmp_path: Path) -> None:
    folder = _manager_folder(tmp_path)
    for path in folder.glob("checkpoint-step*.pt"):
        _truncate(path)
    with pytest.raises(CheckpointError) as caught:
        CheckpointManager(folder).load_latest()
    for step in (10, 20, 30):
        assert f"checkpoint-step000000{step}.pt" in str(caught.value)


@pytest.mark.parametrize("damage", [*DAMAGE, "missing"])
def test_a_damaged_manifest_is_kept_aside_and_rebuilt_from_the_verified_files(
        tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    folder = _manager_folder(tmp_path)
    manifest = folder / "manifest.json"
    ({**DAMAGE, "missing": _missing})[damage](manifest)
    before = manifest.read_bytes() if manifest.exists() else None
    manager = CheckpointManager(folder, keep_last=3)
    state = manager.load_latest()
    assert state is not None and torch.equal(state["w"], torch.full((64, 64), 30.0))
    assert [c.step for c in manager.list()] == [10, 20, 30]
    assert "manifest.json" in caplog.text
    kept = list(folder.glob("manifest.json.corrupt-*"))
    if before is not None:  # the damaged manifest is kept as it was, for inspection
        assert [p.read_bytes() for p in kept] == [before]


def test_two_damaged_manifests_in_one_second_are_both_kept(tmp_path: Path) -> None:
    folder = _manager_folder(tmp_path)
    manifest = folder / "manifest.json"
    seen = []
    for garbage in (b"{not json", b"[1, 2"):
        manifest.write_bytes(garbage)
        CheckpointManager(folder, clock=lambda: 1_800_000_000.0).load_latest()
        seen.append(garbage)
    kept = sorted(p.read_bytes() for p in folder.glob("manifest.json.corrupt-*"))
    assert kept == sorted(seen)


@pytest.mark.parametrize("damage", CKPT_DAMAGE)
def test_a_damaged_workflow_checkpoint_is_an_error_naming_it(tmp_path: Path,
                                                             damage: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from _workflow_toy import ARGS, ToyTrainer

    from loopwise.train.workflow.runner import Workflow

    Workflow(ToyTrainer(dict(ARGS)), tmp_path, 1, "exp", system=False).run()
    last = tmp_path / "exp" / "last_checkpoint.pth"
    CKPT_DAMAGE[damage](last)
    before = last.read_bytes() if last.exists() else None
    with pytest.raises(CheckpointError, match="last_checkpoint.pth"):
        Workflow(ToyTrainer(None), tmp_path, 2, "exp", system=False).run()
    assert (last.read_bytes() if last.exists() else None) == before


# -- a refusal changes nothing ---------------------------------------------------------------
def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


STORE_DAMAGE = {"truncated": _truncate, "bit-flipped": _bitflip, "garbage": _garbage}


@pytest.mark.parametrize("damage", STORE_DAMAGE)
def test_resuming_workflow_or_fit_on_a_damaged_store_is_refused_changing_no_file(
        tmp_path: Path, damage: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from _workflow_toy import ARGS, ToyTrainer

    from loopwise.train.fit.config import TrainingConfig
    from loopwise.train.fit.entry import fit
    from loopwise.train.workflow.runner import Workflow

    Workflow(ToyTrainer(dict(ARGS)), tmp_path, 1, "exp", system=False).run()
    data = [(torch.randn(4, 3), torch.randn(4, 1)) for _ in range(3)]
    cfg = TrainingConfig(epochs=1, model_name="m")
    fit(torch.nn.Linear(3, 1), data, loss_fn=torch.nn.MSELoss(), config=cfg, root=tmp_path,
        name="fit", progress=False, system=False, plots=False, report=False)
    (tmp_path / "fit" / "m_results.json").unlink()  # not finished: the next fit resumes it
    for folder, again in (
            (tmp_path / "exp", lambda: Workflow(ToyTrainer(None), tmp_path, 2, "exp",
                                                system=False).run()),
            (tmp_path / "fit", lambda: fit(torch.nn.Linear(3, 1), data,
                                           loss_fn=torch.nn.MSELoss(), config=cfg,
                                           root=tmp_path, name="fit", progress=False,
                                           system=False, plots=False, report=False))):
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        STORE_DAMAGE[damage](folder / "store.sqlite")
        before = _files(folder)
        with pytest.raises(CorruptRecordError, match=f"{folder / 'store.sqlite'} is corrupt "
                           r"\(SQLite: .*\); it was left as it was"):
            again()
        assert _files(folder) == before and not (folder / "checkpoints").exists()


@pytest.mark.parametrize("damage", ["not UTF-8", "row cut"])
def test_a_damaged_history_csv_is_refused_before_the_workflow_reopens(
        tmp_path: Path, damage: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from _workflow_toy import ARGS, ToyTrainer

    from loopwise.train.workflow.runner import Workflow

    Workflow(ToyTrainer(dict(ARGS)), tmp_path, 2, "exp", system=False).run()
    history = tmp_path / "exp" / "history.csv"
    if damage == "not UTF-8":
        history.write_bytes(history.read_bytes() + b"3,\xff\xfe,1\n")
        said = r"is not UTF-8 text \(byte \d+: invalid start byte\)"
    else:
        history.write_bytes(history.read_bytes()[:-4])  # the last row cut mid-value
        said = "ends in a row cut short"
    before = _files(tmp_path / "exp")
    with pytest.raises(ValueError, match=f"{history} {said}.*it was left as it was"):
        Workflow(ToyTrainer(None), tmp_path, 3, "exp", system=False).run()
    assert _files(tmp_path / "exp") == before


# -- the store-flip figure ---------------------------------------------------------------------
FLIPS = 200


def _store_content(folder: Path) -> dict[str, Any]:
    """Everything a view reads from the store; a part that fails its check is 'damaged'."""
    reader = RunReader(folder)
    out: dict[str, Any] = {}
    for key in ("loss", "acc", "lr"):
        try:
            s = reader.series(key)
            out[key] = (bytes(s.steps), bytes(s.times), bytes(s.values))
        except CorruptRecordError as exc:
            out[key] = "damaged" if key in str(exc) or "SQLite" in str(exc) else str(exc)
    for part, read in (("events", reader.events), ("system", reader.system)):
        try:
            out[part] = repr(read())
        except CorruptRecordError:
            out[part] = "damaged"
    return out


def test_every_byte_flipped_in_a_value_chunk_or_an_event_is_detected(tmp_path: Path) -> None:
    """The store-flip figure of docs/reliability.md: FLIPS single-bit flips, each in a fresh
    copy of a real store, at random bytes of its value chunks (steps, times, values) and its
    events' text; each flip is detected (the series or the events named as damaged) or
    changes nothing; a value read changed without a word is counted (target 0)."""
    import random
    import sqlite3

    with Run.create(tmp_path, "r") as run:
        for step in range(1, 1501):
            run.log_scalars({"loss": 1.0 / step, "acc": step / 1500, "lr": 0.1}, step=step)
            if step % 100 == 0:
                run.log_event("note", f"checkpoint at step {step}")
                run.log_system({"cpu_pct": step / 100.0})
    store = tmp_path / "r" / "store.sqlite"
    original = store.read_bytes()
    truth = _store_content(store.parent)
    conn = sqlite3.connect(store)
    blobs = [b for row in conn.execute("SELECT steps, times, vals FROM scalar_chunks")
             for b in row] + [m.encode() for (m,) in conn.execute("SELECT message FROM events")]
    conn.close()
    regions = set()  # the part of each blob stored in one piece in its page, every copy
    for blob in blobs:  # (the keys share their steps; a freed page may hold an old chunk)
        part = blob[:4000]
        at = original.find(part)
        assert at >= 0
        while at >= 0:
            regions.add((at, len(part)))
            at = original.find(part, at + 1)
    chosen = sorted(regions)
    rng = random.Random(16)
    seen = {"detected": 0, "no effect": 0, "silent": 0}
    for _ in range(FLIPS):
        at, size = rng.choice(chosen)
        data = bytearray(original)
        data[at + rng.randrange(size)] ^= 1 << rng.randrange(8)
        store.write_bytes(bytes(data))
        now = _store_content(store.parent)
        changed = [k for k in truth if now[k] != truth[k]]
        if not changed:
            seen["no effect"] += 1
        elif all(now[k] == "damaged" for k in changed):
            seen["detected"] += 1
        else:
            seen["silent"] += 1
    print(f"\nstore flips: {FLIPS} in value chunks and events: {seen}")
    assert seen["silent"] == 0, seen
    assert seen["detected"] >= FLIPS * 0.9, seen
