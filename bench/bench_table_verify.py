"""The run table's cold read with the checksum checks (issue 21): ``RunTable(root).rows()`` over
1,000 runs (tests/view/_sweep.py's sweep) reading each store through
``RunReader.all_values`` (every chunk's XXH3-64 checked, a damaged series left out), against
the read before (the values column only, unchecked). Interleaved rounds in one process, a fresh
table each round (nothing cached); wall time and the process's CPU time.

Run: .venv/bin/python bench/bench_table_verify.py [--rounds 9] [--runs 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "view"))
from _sweep import clone_sweep

from loopwise.record.reader import RunReader
from loopwise.record.store import unpack
from loopwise.view.runs_table import RunTable


def _before(self: RunReader, *, damage: Any = None) -> dict[str, array[float]]:
    """``all_values`` before the checks: the values column only."""
    out: dict[str, array[float]] = {}
    for name, blob in self._query("SELECT k.name, c.vals FROM scalar_chunks c JOIN keys k ON "
                                  "k.id = c.key_id ORDER BY c.id"):
        unpack("d", blob, out.setdefault(name, array("d")))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--runs", type=int, default=1000)
    args = p.parse_args()
    checked = RunReader.all_values
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        root.mkdir()
        clone_sweep(root, args.runs)
        wall: dict[str, list[float]] = {"before": [], "checked": []}
        cpu: dict[str, list[float]] = {"before": [], "checked": []}
        for i in range(args.rounds):
            order = [("before", _before), ("checked", checked)]
            for label, read in order if i % 2 == 0 else order[::-1]:
                RunReader.all_values = read  # type: ignore[method-assign]
                w, c = time.perf_counter(), time.process_time()
                rows = RunTable(root).rows()
                wall[label].append(time.perf_counter() - w)
                cpu[label].append(time.process_time() - c)
                assert len(rows) == args.runs and not any(r.damaged or r.problem for r in rows)
        RunReader.all_values = checked  # type: ignore[method-assign]
    for what, times in (("wall", wall), ("CPU", cpu)):
        b, c = statistics.median(times["before"]), statistics.median(times["checked"])
        print(f"{what}: before {b * 1e3:.0f} ms, checked {c * 1e3:.0f} ms, "
              f"x{c / b:.3f}, {(c - b) * 1e6 / args.runs:+.0f} us per run "
              f"({args.rounds} interleaved rounds, {args.runs} runs)")


if __name__ == "__main__":
    main()
