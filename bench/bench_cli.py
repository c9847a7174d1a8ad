"""The command line: start-up of the view verbs, and the verbs on a big run.

Start-up: ``python -m loopwise --help``, ``runs``, ``show``, ``compare``, ``doctor``,
``report``, ``export`` on a small run and ``ui --help`` (the server never exits: its start-up
is the parser's), each in a fresh process, against ``python -c pass`` (the interpreter's own
start) and ``python -c "import torch"`` (what a verb that imports torch pays), interleaved round
by round. Goal: a view verb in <= 0.3 s.

Big run (``--steps``, default 2,000,000 steps of 5 metrics, 10,000,000 points, recorded once
with ``Run.log_columns``, untimed): ``show``, ``doctor`` and ``export`` to CSV and Parquet, each
a fresh process, against reading every series of the run with ``RunReader`` in a fresh process
(what any of them must at least do). Goals: doctor and show <= 3 s, export <= 5 s.

Run: .venv/bin/python bench/bench_cli.py [--rounds 5] [--quick] [--steps N] [--json PATH]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Table, arguments, emit, interleaved, rounds_of

SRC = str(Path(__file__).resolve().parents[1] / "src")
METRICS = ("loss", "accuracy", "lr", "grad_norm", "val_loss")


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get(
        "PYTHONPATH")])), NO_COLOR="1", COLUMNS="100")


def process(args: list[str], *, cwd: str | None = None) -> float:
    """Wall time of a fresh ``python ARGS`` process (it must exit 0, or 1 for ``doctor``:
    "needs attention" is an answer)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=_env(),
                          cwd=cwd, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode not in ((0, 1) if "doctor" in args else (0,)):
        raise RuntimeError(f"python {' '.join(args)} failed (exit {proc.returncode}):\n"
                           f"{(proc.stderr or proc.stdout)[-2000:]}")
    return seconds


def make_run(root: Path, name: str, steps: int) -> Path:
    from loopwise.record import Run

    with Run.create(root, name) as run:
        run.set_config({"lr": 0.01, "batch_size": 32})
        chunk = 500_000
        for start in range(0, steps, chunk):
            n = min(chunk, steps - start)
            idx = array("q", range(start + 1, start + n + 1))
            times = array("d", (1.7e9 + i * 1e-3 for i in range(start, start + n)))
            columns = {}
            for k, key in enumerate(METRICS):
                values = array("d", (1.0 / (1 + i * 1e-5) + k for i in range(start, start + n)))
                columns[key] = (idx, times, values)
            run.log_columns(columns)
            run.flush()
        for epoch in range(1, 11):
            run.log_epoch(epoch, {"loss": 1 / epoch, "val_loss": 1.2 / epoch},
                          step=epoch * steps // 10)
    return root / name


READ_ALL = ("import sys; from loopwise.record import RunReader; r = RunReader(sys.argv[1]); "
            "[r.series(k).values for k in r.keys()]")


def startup(rounds: int, small: Path, other: Path) -> Table:
    cli = ["-m", "loopwise"]
    report, csv = str(small.parent / "report.html"), str(small.parent / "small.csv")
    variants = {
        "python -c pass (the interpreter)": lambda: process(["-c", "pass"]),
        'python -c "import torch"': lambda: process(["-c", "import torch"]),
        "loopwise --help": lambda: process([*cli, "--help"]),
        "loopwise runs ROOT": lambda: process([*cli, "runs", str(small.parent)]),
        "loopwise show RUN": lambda: process([*cli, "show", str(small)]),
        "loopwise compare RUN RUN": lambda: process([*cli, "compare", str(small), str(other)]),
        "loopwise doctor RUN": lambda: process([*cli, "doctor", str(small)]),
        "loopwise report RUN": lambda: process([*cli, "report", str(small), "-o", report]),
        "loopwise export RUN (CSV)": lambda: process([*cli, "export", str(small), csv]),
        "loopwise ui --help": lambda: process([*cli, "ui", "--help"]),
    }
    samples = interleaved(variants, rounds=rounds)
    table = Table("cli_startup", f"Start-up of the CLI's view verbs on a small run (fresh "
                  f"processes, {rounds} interleaved rounds)", "ms",
                  baseline="python -c pass (the interpreter)", ratio_label="x python -c pass")
    base = samples["python -c pass (the interpreter)"]
    for name, values in samples.items():
        added = sorted(v - b for v, b in zip(values, base))[len(values) // 2]
        table.add(name, [v * 1e3 for v in values],
                  note="" if name.startswith("python -c pass") else
                  f"+{added * 1e3:.0f} ms over the interpreter's start")
    table.notes.append("goal: a view verb (not fit) starts in <= 0.3 s; none imports torch "
                       "(tests/test_architecture.py)")
    return table


def big(rounds: int, run: Path, steps: int, tmp: str) -> Table:
    cli = ["-m", "loopwise"]
    csv, parquet = os.path.join(tmp, "out.csv"), os.path.join(tmp, "out.parquet")
    variants = {
        "RunReader: every series read (baseline)": lambda: process(["-c", READ_ALL, str(run)]),
        "loopwise show RUN": lambda: process([*cli, "show", str(run)]),
        "loopwise doctor RUN": lambda: process([*cli, "doctor", str(run)]),
        "loopwise export RUN --format csv": lambda: process(
            [*cli, "export", str(run), csv, "--format", "csv"]),
        "loopwise export RUN --format parquet": lambda: process(
            [*cli, "export", str(run), parquet, "--format", "parquet"]),
    }
    samples = interleaved(variants, rounds=rounds)
    points = steps * len(METRICS)
    table = Table("cli_big", f"CLI verbs on a run of {steps:,} steps x {len(METRICS)} metrics "
                  f"({points:,} points; fresh processes, {rounds} interleaved rounds)", "s",
                  baseline="RunReader: every series read (baseline)",
                  ratio_label="x reading every series")
    goals = {"show": "goal <= 3 s", "doctor": "goal <= 3 s", "export": "goal <= 5 s"}
    for name, values in samples.items():
        goal = next((g for verb, g in goals.items() if f" {verb} " in name), "")
        table.add(name, values, note=goal)
    return table


def main() -> None:
    parser = arguments(__doc__, rounds=5)
    parser.add_argument("--steps", type=int, default=None,
                        help="steps of the big run (default 2,000,000; 200,000 with --quick)")
    parser.add_argument("--skip-big", action="store_true", help="start-up rows only")
    args = parser.parse_args()
    rounds = rounds_of(args)
    steps = args.steps or (200_000 if args.quick else 2_000_000)
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        small = make_run(Path(tmp) / "runs", "small", 1_000)
        other = make_run(Path(tmp) / "runs", "other", 1_000)
        tables.append(startup(rounds, small, other))
        if not args.skip_big:
            t0 = time.perf_counter()
            run = make_run(Path(tmp) / "big", "big", steps)
            print(f"recorded {steps:,} steps x {len(METRICS)} metrics in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
            tables.append(big(rounds, run, steps, tmp))
    emit(tables, args)


if __name__ == "__main__":
    main()
