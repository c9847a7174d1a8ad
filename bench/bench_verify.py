"""What the store's checksums cost a read: ``RunReader.series`` of a 1,000,000-point series with
every chunk's XXH3-64 checked, against the same read without the check, the check on the reading
thread instead of a second one (a one-core machine), and the read as it was before checksums
and the one-point-per-step rule (neither). One process, the
variants interleaved (one of each per round); each opens the store afresh, as a viewer does.

Goal (issue 21): the check costs at most 5 % of the read.

Run: .venv/bin/python bench/bench_verify.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Table, arguments, emit, interleaved, rounds_of
from loopwise.record import Run, RunReader
from loopwise.record import reader as reader_module
from loopwise.record.verify import ChunkCheck


class Unverified(RunReader):
    """The reader with the checksum check turned off (the baseline)."""

    def _columns(self, key: str, *, verify: bool = True
                 ) -> tuple[array[int], array[float], array[float]]:
        return super()._columns(key, verify=False)


def _as_stored(steps: Any, times: Any, values: Any) -> tuple[Any, Any, Any]:
    return steps, times, values


def both(fn: Callable[[], object]) -> Callable[[], dict[str, float]]:
    """``fn`` as a variant: its wall time and its process CPU time (every thread), seconds."""
    def run() -> dict[str, float]:
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
    return run


def write(root: str, n: int) -> str:
    run = Run.create(root, "verify")
    now = time.time()
    run.log_columns({"loss": (array("q", range(n)), array("d", (now + i * 1e-3 for i in
                                                                  range(n))),
                              array("d", (1.0 / (1 + i) for i in range(n))))})
    run.close()
    return str(run.path)


def before(path: str) -> None:
    """Neither the checksum nor the one-point-per-step check: the read before issue 21."""
    kept = reader_module.one_per_step
    reader_module.one_per_step = _as_stored  # type: ignore[assignment]
    try:
        Unverified(path).series("loss")
    finally:
        reader_module.one_per_step = kept


def inline(path: str) -> None:
    """The check on the reading thread (what a one-core machine gets)."""
    kept = ChunkCheck.THREAD_BYTES
    ChunkCheck.THREAD_BYTES = 1 << 62
    try:
        RunReader(path).series("loss")
    finally:
        ChunkCheck.THREAD_BYTES = kept


def main() -> None:
    args = arguments(__doc__, rounds=15).parse_args()
    rounds = rounds_of(args)
    n = 200_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as root:
        path = write(root, n)
        assert len(RunReader(path).series("loss")) == n
        variants: dict[str, Callable[[], dict[str, float]]] = {
            "without the checksum check": both(lambda: Unverified(path).series("loss")),
            "with the checksum check (default)": both(lambda: RunReader(path).series("loss")),
            "with the check on the reading thread": both(lambda: inline(path)),
            "neither the check nor one point per step (before)": both(lambda: before(path)),
        }
        samples = interleaved(variants, rounds=rounds)
    tables = []
    for measure, what in (("wall", "wall time"), ("cpu", "CPU time of the process, all "
                                                          "threads")):
        table = Table(f"verify_{measure}", f"RunReader.series of {n:,} points, {what} "
                      f"({rounds} interleaved rounds, one process)", "ms",
                      baseline="without the checksum check")
        base = [s[measure] for s in samples["without the checksum check"]]
        for name, runs in samples.items():
            secs = [s[measure] for s in runs]
            added = statistics.median(s - b for s, b in zip(secs, base, strict=True)) * 1e6
            table.add(name, [s * 1e3 for s in secs],
                      note="" if name == table.baseline else f"{added:+,.0f} us per read")
        tables.append(table)
    emit(tables, args)


if __name__ == "__main__":
    main()
