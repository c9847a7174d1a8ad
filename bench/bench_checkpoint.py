"""Checkpoint writes: sync save throughput vs ``torch.save`` + fsync, and the time the training
thread is blocked by ``async_save`` vs ``torch.save`` + fsync, for a ~512 MB state dict, in one
process. Rounds interleave the methods (baseline, storage, manager, async), each round starting
at the next method, so that a disturbance of the shared machine (or of its disk) hits all of
them; the table (``_timing.Table``) shows medians with min-max, and each method's time as a
ratio of the baseline's in the same round.

Run: .venv/bin/python bench/bench_checkpoint.py [--mb 512] [--rounds 7] [--dir PATH] [--quick]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Table, arguments, emit, rounds_of
from loopwise.checkpoint.manager import CheckpointManager
from loopwise.checkpoint.named import NamedFiles
from loopwise.checkpoint.store import save_file


def make_state(megabytes: int) -> dict[str, torch.Tensor]:
    """float32 tensors of 8 MB each (a 2048x1024 layer), ``megabytes`` in all."""
    g = torch.Generator().manual_seed(0)
    count = max(1, megabytes // 8)
    return {f"layer{i}.weight": torch.randn(2048, 1024, generator=g) for i in range(count)}


CPU: dict[str, list[float]] = {"baseline": [], "storage": [], "nocrc": []}  # CPU s per save


def baseline(state: dict[str, torch.Tensor], path: Path) -> float:
    """What a careful user writes by hand: torch.save into a file, flush, fsync."""
    path.unlink(missing_ok=True)
    c0, t0 = time.process_time(), time.perf_counter()
    with open(path, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    took = time.perf_counter() - t0
    CPU["baseline"].append(time.process_time() - c0)
    return took


def raw_write(state: dict[str, torch.Tensor], path: Path) -> float:
    """The floor: every tensor's bytes written as they are into one file, flush, fsync (no
    format, no hash; what no checkpoint format can beat on the same disk)."""
    path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with open(path, "wb") as fh:
        for tensor in state.values():
            fh.write(memoryview(tensor.contiguous().numpy()).cast("B"))
        fh.flush()
        os.fsync(fh.fileno())
    return time.perf_counter() - t0


def baseline_fresh(state: dict[str, torch.Tensor], path: Path, previous: Path | None) -> float:
    """torch.save + fsync into a new file while the previous one still exists, then delete the
    previous one (timed too): the disk pattern of any crash-safe save that keeps one file (the
    old file must survive until the new one is complete), i.e. what CheckpointManager(keep_last
    =1) does. On thin-provisioned VM disks fresh blocks cost more than reused ones, and on a
    disk mounted with ``discard`` deleting 512 MiB costs ~0.15 s.
    """
    t0 = time.perf_counter()
    with open(path, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if previous is not None:
        previous.unlink(missing_ok=True)
    return time.perf_counter() - t0


def storage(state: dict[str, torch.Tensor], path: Path, cpu: str = "storage") -> float:
    """save_file: temp + XXH3-128 while writing + fsync + os.replace + fsync of the folder."""
    path.unlink(missing_ok=True)
    c0, t0 = time.process_time(), time.perf_counter()
    save_file(path, state)
    took = time.perf_counter() - t0
    CPU[cpu].append(time.process_time() - c0)
    return took


def main() -> None:
    parser = arguments(__doc__, rounds=7)
    parser.add_argument("--mb", type=int, default=None,
                        help="state size in MB (default 512; 64 with --quick)")
    parser.add_argument("--dir", default=None, help="folder to write in (default: a temp dir)")
    opts = parser.parse_args()
    opts.rounds = rounds_of(opts)
    opts.mb = opts.mb or (64 if opts.quick else 512)
    root = Path(tempfile.mkdtemp(prefix="bench-ckpt-", dir=opts.dir))
    try:
        state = make_state(opts.mb)
        nbytes = sum(t.numel() * t.element_size() for t in state.values())
        sync_mgr = CheckpointManager(root / "sync", keep_last=1, keep_best=0)
        async_mgr = CheckpointManager(root / "async", keep_last=1, keep_best=0,
                                      async_save=True)
        named = NamedFiles(root / "named")
        (root / "named").mkdir()
        base_t, fresh_t, store_t, nocrc_t, mgr_t, blocked_t = [], [], [], [], [], []
        raw_t: list[float] = []
        named_t: list[float] = []
        first_blocked: list[float] = []
        baseline(state, root / "warmup.pt")  # first touches of the page cache

        def fresh(i: int) -> None:
            fresh_t.append(baseline_fresh(state, root / f"fresh{i}.pt",
                                          root / f"fresh{i - 1}.pt" if i else None))

        def no_crc(i: int) -> None:
            torch.serialization.set_crc32_options(False)  # a process-wide user choice
            try:
                nocrc_t.append(storage(state, root / "storage.pt", "nocrc"))
            finally:
                torch.serialization.set_crc32_options(True)

        def manager(i: int) -> None:
            t0 = time.perf_counter()
            sync_mgr.save(state, step=i)
            mgr_t.append(time.perf_counter() - t0)

        def fixed_name(i: int) -> None:
            t0 = time.perf_counter()
            named.save({"last_checkpoint.pth": state}, step=i)
            named_t.append(time.perf_counter() - t0)

        def background(i: int) -> None:
            t0 = time.perf_counter()
            async_mgr.save(state, step=i)
            took = time.perf_counter() - t0
            # the first save also allocates the reused snapshot buffers
            (blocked_t if first_blocked else first_blocked).append(took)
            async_mgr.wait()  # steady state: the write is done before anything else runs

        methods = [
            lambda i: base_t.append(baseline(state, root / "baseline.pt")),
            lambda i: raw_t.append(raw_write(state, root / "raw.bin")),
            fresh,
            lambda i: store_t.append(storage(state, root / "storage.pt")),
            no_crc,
            manager,
            fixed_name,
            background,
        ]
        for i in range(opts.rounds):
            # each round starts at another method: no method always follows the same one
            for k in range(len(methods)):
                methods[(i + k) % len(methods)](i)
        async_mgr.close()
        med = statistics.median
        gb = nbytes / 1e9
        table = Table("checkpoint", f"Checkpoint of {nbytes / 2**20:.0f} MiB ({len(state)} "
                      f"tensors, {opts.rounds} interleaved rounds)", "s",
                      baseline="torch.save + fsync (baseline)", ratio_label="x baseline's time")
        table.add("torch.save + fsync (baseline)", base_t, note=f"{gb / med(base_t):.2f} GB/s")
        rows = [
            ("raw write of the tensors' bytes + fsync (the disk's floor)", raw_t, ""),
            ("torch.save + fsync into a new file while the previous exists, then delete it "
             "(baseline B)", fresh_t, ""),
            ("save_file (atomic + XXH3-128), previous file deleted first", store_t,
             "goal: >= 0.8x the baseline's throughput (<= 1.25x its time)"),
            ("save_file, torch's own CRC32 off (set_crc32_options(False))", nocrc_t, ""),
            ("CheckpointManager.save, sync (keep_last=1, recycles the dropped file)", mgr_t,
             "goal: <= 1.25x the baseline's time"),
            ("NamedFiles.save (Workflow's last_checkpoint.pth: fixed name, manifest, recycles "
             "the replaced file)", named_t, "goal: <= 1.25x the baseline's time"),
            ("CheckpointManager.save, async: training thread blocked", blocked_t,
             "goal: <= 0.2x the baseline's time"),
        ]
        for name, samples, goal in rows:
            # the async rows skip the first round (its first save allocates the buffers)
            speed = f"{gb / med(samples):.2f} GB/s" if "blocked" not in name else ""
            table.add(name, samples, baseline=base_t[len(base_t) - len(samples):],
                      note="; ".join(filter(None, [speed, goal])))
        table.notes += [
            f"async, first save (allocates the snapshot buffers): {first_blocked[0]:.3f} s",
            f"process CPU per save (median): baseline {med(CPU['baseline'][1:]):.3f} s, "
            f"save_file {med(CPU['storage']):.3f} s, without torch's CRC32 "
            f"{med(CPU['nocrc']):.3f} s",
            f"CheckpointManager sync vs baseline B, per round: "
            f"{med(m / b for b, m in zip(fresh_t, mgr_t, strict=True)):.2f}x its time"]
        emit([table], opts)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
