"""The reader of the load test: exports every run under ROOT again and again while they are
written (``loopwise export RUN OUT.csv``; ``--to tensorboard`` once a run has ended, as a
running one is refused: it is mirrored live), until STOP exists; prints one JSON line: rounds,
exports, tensorboard mirrors, failures (with their messages).

usage: _load_reader.py ROOT OUT STOP
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

from loopwise.cli import main as loopwise
from loopwise.record import RunReader


def main() -> int:
    root, out, stop = sys.argv[1:4]
    Path(out).mkdir(parents=True, exist_ok=True)
    rounds = exports = mirrors = 0
    mirrored: set[str] = set()
    failures: list[str] = []
    while not os.path.exists(stop):
        rounds += 1
        names = sorted(p.name for p in Path(root).iterdir() if (p / "run.json").is_file())
        for i, name in enumerate(names):
            argv = ["export", name, str(Path(out) / f"{name}.csv"), "--root", root]
            if name not in mirrored and (rounds + i) % 5 == 0 and \
                    RunReader(Path(root) / name).info["status"] == "finished":
                argv = ["export", name, "--to", "tensorboard", str(Path(out) / "tb" / name),
                        "--root", root]
                mirrored.add(name)
                mirrors += 1
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code = loopwise(argv)
            exports += 1
            if code != 0:
                failures.append(f"{argv}: {code}: {err.getvalue().strip()[-300:]}")
    print(json.dumps({"rounds": rounds, "exports": exports, "mirrors": mirrors,
                      "failures": failures}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
