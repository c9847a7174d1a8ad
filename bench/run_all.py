"""Run every benchmark in bench/ and rewrite docs/benchmarks.md (and docs/benchmarks.png).

Each benchmark is a plain script that also runs alone and prints its table; here each one runs
in its own process with ``--json`` (and ``--quick`` for a short pass while developing), and the
doc is written from the tables they return: the machine, the versions of loopwise and of each
peer, every row as a median over the rounds with its min-max and its ratio to the baseline
measured in the same rounds, a chart of the main ratios, and where loopwise is behind.

Scripts that do not return the shared JSON tables (system sampler, views, fit, GPU) are
run too; their printed tables go into the doc as they are.

Run: .venv/bin/python bench/run_all.py [--quick] [--only entry,bar,...]   (or: make bench)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _report import Outcome, machine, write_doc
from _timing import Table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


@dataclass
class Script:
    key: str
    file: str
    full: list[str] = field(default_factory=list)
    quick: list[str] = field(default_factory=list)
    tables: bool = True  # prints/writes the shared JSON tables
    hook: bool = False  # comes from another branch: "not measured" when the file is absent
    needs_gpu: bool = False


SCRIPTS = [
    Script("entry", "entry_points.py", ["--long", "3000"], ["--quick"]),
    # HOOKS for the rows made by other branches (loopwise.keras: the Keras callback; the
    # distributed loop: 2-rank torchrun): each runs when its script exists ("not measured"
    # otherwise); it gets --quick / --json only if its source mentions them, and its printed
    # output goes into the doc when it returns no JSON tables.
    Script("keras", "bench_keras.py", [], ["--quick"], hook=True),
    Script("trainers", "bench_trainers.py", [], ["--quick"]),
    Script("distributed", "bench_distributed.py", [], ["--quick"], hook=True),
    Script("bar", "bench_monitor.py", ["--rounds", "5"], ["--quick"]),
    Script("progress", "bench_progress.py", [], ["--quick"]),
    Script("store", "bench_store.py", [], ["--quick"]),
    Script("read", "bench_read.py", [], ["--quick"]),
    Script("cli", "bench_cli.py", ["--rounds", "3"], ["--quick"]),
    Script("media", "bench_media.py", ["--rounds", "3"], ["--quick"]),
    Script("verify", "bench_verify.py", [], ["--quick"]),
    Script("checkpoint", "bench_checkpoint.py", ["--rounds", "5"], ["--quick"]),
    Script("exporters", "bench_exporters.py", ["--rounds", "5"], ["--quick"]),
    Script("backfill", "bench_backfill.py", ["--rounds", "3"], ["--quick"]),
    Script("system", "bench_system.py", ["--seconds", "20"], ["--seconds", "4"], tables=False),
    Script("fit", "bench_fit.py", ["--epochs", "60"], ["--epochs", "8"], tables=False),
    Script("views", "bench_views.py", ["--rounds", "5"], ["--rounds", "2"], tables=False),
    Script("ui_peers", "bench_ui_peers.py", ["--rounds", "5"], ["--quick"]),
    Script("runs_table", "bench_runs_table.py", ["--rounds", "5", "--mlflow"], ["--quick"]),
    Script("gpu", "bench_gpu.py", [], [], tables=False, needs_gpu=True),
]


def _has_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def run_script(script: Script, *, quick: bool, tmp: str) -> Outcome:
    path = BENCH / script.file
    if not path.exists():
        why = ("not measured: this branch has no bench/" + script.file if script.hook
               else f"bench/{script.file} is missing")
        return Outcome(script.key, script.file, status=why)
    if script.needs_gpu and not _has_gpu():
        return Outcome(script.key, script.file, status="not measured: no CUDA device here")
    out = os.path.join(tmp, f"{script.key}.json")
    options = script.quick if quick else script.full
    tables = script.tables
    if script.hook:  # another branch's script: use only the options it knows
        source = path.read_text()
        options = [o for o in options if o in source]
        tables = '"--json"' in source
    cmd = [sys.executable, str(path), *options]
    if tables:
        cmd += ["--json", out]
    env = dict(os.environ, KERAS_BACKEND="torch", MLFLOW_DISABLE_TELEMETRY="true",
               MPLBACKEND="Agg", KERAS_HOME=os.path.join(tmp, "keras"),
               MPLCONFIGDIR=os.path.join(tmp, "mpl"), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                        os.environ.get("PYTHONPATH")])))
    print(f"== {script.file} {' '.join(cmd[2:])}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    print(proc.stdout, flush=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        print(tail, file=sys.stderr)
        return Outcome(script.key, script.file, status=f"failed (exit {proc.returncode})",
                       text=tail, seconds=seconds)
    if not tables:
        return Outcome(script.key, script.file, text=proc.stdout.strip(), seconds=seconds)
    with open(out) as fh:
        data = json.load(fh)
    return Outcome(script.key, script.file, seconds=seconds,
                   tables=[Table.from_dict(t) for t in data["tables"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short pass (fewer rounds, smaller sizes) for development")
    parser.add_argument("--only", default=None,
                        help="comma-separated keys: " + ",".join(s.key for s in SCRIPTS))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"),
                        help="the Markdown file to write (the chart goes beside it, .png)")
    args = parser.parse_args()
    keys = None if args.only is None else set(args.only.split(","))
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_start']}",
          flush=True)
    t0 = time.perf_counter()
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        for script in SCRIPTS:
            if keys is None or script.key in keys:
                outcomes.append(run_script(script, quick=args.quick, tmp=tmp))
    info["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    info["minutes"] = f"{(time.perf_counter() - t0) / 60:.1f}"
    write_doc(Path(args.doc), outcomes, info, quick=args.quick)
    print(f"wrote {args.doc} and {Path(args.doc).with_suffix('.png')} "
          f"in {info['minutes']} min")


if __name__ == "__main__":
    main()
