"""Storage: atomic hashed writes, verification, safe loading, snapshots, the background writer."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
import torch
import xxhash

from loopwise.checkpoint.store import (
    BackgroundWriter,
    CheckpointError,
    CorruptCheckpointError,
    ManifestEntry,
    ManifestError,
    StoredFile,
    TensorSnapshot,
    check_file,
    copy_file,
    digest_file,
    load_file,
    read_manifest,
    save_file,
    stage_file,
    write_manifest,
)


def _state() -> dict[str, object]:
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(600, 600, generator=g), "b": torch.arange(5), "step": 7,
            "nested": {"lr": [0.1, 0.01], "name": "x"}}


def test_save_file_hash_matches_the_bytes_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    stored = save_file(path, _state())  # 1.4 MB: big writes and coalesced small ones
    data = path.read_bytes()
    assert stored.size == len(data)
    assert stored.hash == xxhash.xxh3_128(data).hexdigest()
    assert digest_file(path) == stored
    loaded = load_file(path, expected=stored)
    assert torch.equal(loaded["w"], _state()["w"]) and loaded["nested"]["name"] == "x"
    assert not list(tmp_path.glob("*.tmp"))


def test_saved_file_gets_the_umask_mode_not_0600(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    save_file(path, {"x": torch.zeros(2)})
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_save_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    save_file(path, {"x": torch.ones(3)})
    before = path.read_bytes()

    class Boom:
        def __reduce__(self) -> tuple[object, ...]:
            raise RuntimeError("cannot pickle this")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_file(path, {"x": torch.zeros(3), "bad": Boom()})
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name != "a.pt"]


def test_save_file_writes_over_a_file_it_may_reuse(tmp_path: Path) -> None:
    old = tmp_path / "old.pt"
    old.write_bytes(b"x" * 5_000_000)  # bigger than the new file: the tail must go
    inode = old.stat().st_ino
    stored = save_file(tmp_path / "new.pt", _state(), reuse=old)
    new = tmp_path / "new.pt"
    assert not old.exists() and new.stat().st_ino == inode
    assert new.stat().st_size == stored.size < 5_000_000
    assert stored == digest_file(new)
    assert torch.equal(load_file(new, expected=stored)["w"], _state()["w"])
    # nothing to reuse: a new file, as without reuse
    again = save_file(tmp_path / "again.pt", {"x": 1}, reuse=tmp_path / "missing.pt")
    assert load_file(tmp_path / "again.pt", expected=again) == {"x": 1}
    assert not list(tmp_path.glob("*.tmp"))


def test_save_file_reuse_must_be_a_file_beside_the_target(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    elsewhere = tmp_path / "sub" / "old.pt"
    elsewhere.write_bytes(b"x")
    with pytest.raises(ValueError, match="reuse must be a file in the folder of"):
        save_file(tmp_path / "new.pt", {"x": 1}, reuse=elsewhere)
    with pytest.raises(TypeError, match="reuse must be a file path or None, got int"):
        save_file(tmp_path / "new.pt", {"x": 1}, reuse=3)  # type: ignore[arg-type]
    assert elsewhere.read_bytes() == b"x" and not (tmp_path / "new.pt").exists()


def test_staged_file_takes_its_name_only_on_commit(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    staged = stage_file(path, {"x": torch.ones(2)})
    assert not path.exists() and staged.tmp.exists()
    assert staged.commit() == digest_file(path)
    with pytest.raises(RuntimeError, match="already committed"):
        staged.commit()
    other = stage_file(tmp_path / "b.pt", {"x": 1})
    other.discard()
    assert not other.tmp.exists() and not (tmp_path / "b.pt").exists()


@pytest.mark.parametrize("damage, problem", [
    ("truncate", "truncated"),
    ("flip", "hash does not match"),
    ("empty", "empty"),
    ("delete", "missing"),
])
def test_damaged_files_are_refused_with_the_reason(tmp_path: Path, damage: str,
                                                   problem: str) -> None:
    path = tmp_path / "a.pt"
    stored = save_file(path, _state())
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "flip":
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
    assert problem in (check_file(path, stored) or "")
    with pytest.raises(CorruptCheckpointError, match=problem):
        load_file(path, expected=stored)


def test_unverified_load_of_garbage_is_a_corrupt_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(CorruptCheckpointError, match="torch.load failed"):
        load_file(path)


class Custom:
    def __init__(self) -> None:
        self.value = 3


def test_pickled_objects_need_an_explicit_opt_in_that_warns(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    stored = save_file(path, {"obj": Custom()})
    with pytest.raises(CheckpointError, match="allow_pickle=True if you trust"):
        load_file(path, expected=stored)
    with pytest.warns(UserWarning, match="unpickling can run arbitrary code"):
        loaded = load_file(path, expected=stored, allow_pickle=True)
    assert loaded["obj"].value == 3


def test_copy_file_is_an_identical_atomic_copy(tmp_path: Path) -> None:
    src = tmp_path / "a.pt"
    stored = save_file(src, _state())
    (tmp_path / "backup").mkdir()
    copied = copy_file(src, tmp_path / "backup" / "a.pt")
    assert copied == stored


def test_manifest_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    entry = ManifestEntry(file="c.pt", step=3, size=10, hash="ab", algorithm="sha256", time=1.5,
                          seq=1, metrics={"val_loss": 0.5, "odd": float("nan")})
    write_manifest(path, [entry], monitor="val_loss")
    [back] = read_manifest(path)
    assert back.step == 3 and back.metrics["val_loss"] == 0.5
    assert back.metrics["odd"] != back.metrics["odd"]  # NaN survives as NaN
    path.write_text("{ not json")
    with pytest.raises(ManifestError, match="is corrupt"):
        read_manifest(path)
    path.unlink()
    with pytest.raises(ManifestError, match="is missing"):
        read_manifest(path)


def test_snapshot_copies_and_reuses_its_buffers() -> None:
    model = torch.nn.Linear(4, 3)
    snap = TensorSnapshot()
    first = snap.take({"model": model.state_dict(), "step": 1, "names": ("a", "b")})
    assert first["names"] == ("a", "b") and first["step"] == 1
    buffer_ptr = first["model"]["weight"].data_ptr()
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(first["model"]["weight"], model.weight)  # a copy, not a view
    second = snap.take({"model": model.state_dict(), "step": 2, "names": ("a", "b")})
    assert second["model"]["weight"].data_ptr() == buffer_ptr  # the buffer was reused
    assert torch.equal(second["model"]["weight"], model.weight)
    assert snap.nbytes == (12 + 3) * 4


def test_background_writer_runs_one_job_and_raises_its_error_later() -> None:
    writer = BackgroundWriter()
    release = threading.Event()
    order: list[str] = []
    writer.submit(lambda: (release.wait(5), order.append("first")))
    assert writer.busy
    release.set()
    writer.submit(lambda: order.append("second"))  # waits for the first
    writer.wait()
    assert order == ["first", "second"]

    def fail() -> None:
        raise OSError("disk full")

    writer.submit(fail)
    with pytest.raises(CheckpointError, match="background checkpoint write failed: disk full"):
        writer.submit(lambda: None)
    writer.close()
    with pytest.raises(RuntimeError, match="writer is closed"):
        writer.submit(lambda: None)


def test_stored_file_records_the_algorithm() -> None:
    assert StoredFile(size=1, hash="x").algorithm == "xxh3_128"


def test_files_hashed_with_another_algorithm_still_verify(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    torch.save({"x": torch.ones(3)}, path)  # e.g. a folder from a release that used SHA-256
    data = path.read_bytes()
    old = StoredFile(size=len(data), hash=hashlib.sha256(data).hexdigest(), algorithm="sha256")
    assert torch.equal(load_file(path, expected=old)["x"], torch.ones(3))
    unknown = StoredFile(size=len(data), hash="ab", algorithm="crc99")
    with pytest.raises(CorruptCheckpointError, match="hash algorithm 'crc99' is not available"):
        load_file(path, expected=unknown)
    tampered = StoredFile(size=len(data), hash="0" * 64, algorithm="sha256")
    with pytest.raises(CorruptCheckpointError, match="sha256 hash does not match"):
        load_file(path, expected=tampered)


def test_snapshot_handles_every_kind_of_tensor() -> None:
    state = {"transposed": torch.randn(3, 4).t(), "flag": torch.tensor(True),
             "complex": torch.randn(2, dtype=torch.complex64),
             "bf16": torch.randn(5, dtype=torch.bfloat16), "scalar": torch.tensor(3.0),
             "empty": torch.zeros(0), "param": torch.randn(3, requires_grad=True)}
    out = TensorSnapshot().take(state)
    for key, value in state.items():
        assert torch.equal(out[key], value.detach()), key
        assert out[key].data_ptr() != value.data_ptr() or value.numel() == 0
    assert not out["param"].requires_grad


def test_background_writer_queues_jobs_in_order_without_waiting() -> None:
    writer = BackgroundWriter(wrap_errors=False)
    release = threading.Event()
    order: list[str] = []
    writer.submit(lambda: (release.wait(5), order.append("save")))
    writer.queue(lambda: order.append("history"))  # returns at once: the save still runs
    writer.queue(lambda: order.append("run.json"))
    assert order == [] and writer.busy
    release.set()
    writer.wait()
    assert order == ["save", "history", "run.json"] and not writer.busy

    def fail() -> None:
        raise OSError("disk full")

    writer.queue(fail)
    writer.queue(lambda: order.append("after"))  # a failed job does not stop the later ones
    with pytest.raises(OSError, match="disk full"):  # raised as it is, by the next call
        writer.wait()
    assert order[-1] == "after"
    writer.close()
    with pytest.raises(RuntimeError, match="writer is closed"):
        writer.queue(lambda: None)


def test_snapshot_copies_plain_values_without_sharing_what_can_change() -> None:
    import random

    rng = random.getstate()  # (version, 625 ints, None)
    names = ["a", "b"]
    out = TensorSnapshot().take({"rng": rng, "names": names, "mixed": [1, torch.ones(2)]})
    assert out["rng"] == rng
    random.setstate(out["rng"])  # still a valid state
    names.append("c")
    assert out["names"] == ["a", "b"]  # a list is copied: later changes do not reach it
    assert torch.equal(out["mixed"][1], torch.ones(2)) and out["mixed"][0] == 1
