"""Shared tools of the reliability tests: the kill child's launcher, the check that no file of
a run folder is corrupt, how much of the record a kill lost, the MLflow status of a run.

``LOOPWISE_SOAK=1`` turns the short campaign of ``make test`` into the long one (see
``docs/reliability.md``); ``LOOPWISE_SOAK_SEED`` changes the seed of the kill points.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CHILD = HERE / "_kill_child.py"
SRC = str(HERE.parents[1] / "src")
SOAK = os.environ.get("LOOPWISE_SOAK") == "1"
SEED = int(os.environ.get("LOOPWISE_SOAK_SEED", "16"))
TRIALS = 12 if SOAK else 2  # kills per entry point
# seconds of training a kill may take from the record: the entry's refresh interval (rows go
# from the loop to the run) + the run's flush interval (rows go from the run to the store)
REFRESH = {"fit": 0.25, "workflow": 0.1, "monitor": 0.1, "exporters": 0.1, "keras": 0.2}
FLUSH = 0.2
SLACK = 1.0  # a loaded 2-core machine: the writer thread may run late (it is never skipped)
LOSS_KEY = {"fit": "loss", "workflow": "loss", "monitor": "loss", "exporters": "loss",
            "keras": "loss"}
POINTS = ("step", "write", "commit", "flush", "export")


def child_env(work: Path) -> dict[str, str]:
    path = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "PYTHONHASHSEED": "0", "KERAS_BACKEND": "torch",
            "KERAS_HOME": str(work / ".keras"), "MPLCONFIGDIR": str(work / ".mpl"),
            "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": ""}


def run_child(entry: str, root: Path, name: str, out: Path, *options: str
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHILD), entry, str(root), name, str(out),
                           *options], cwd=root.parent, env=child_env(root.parent),
                          capture_output=True, text=True, timeout=240, check=False)


def draw_kills(entry: str, census: dict[str, int], trials: int = TRIALS) -> list[str]:
    """Seeded kill points inside the run: ``kind:N`` with N within what the uninterrupted run
    reached. In the short campaign the first one lands in a checkpoint write or commit, the
    second on a step or a record flush (or an exporter's delivery); the soak takes the points
    the entry reaches in turn."""
    rng = random.Random(f"{SEED}-{entry}")
    groups = [("write", "commit"), ("step", "flush", "export")]
    reached = [k for k in POINTS if census.get(k)]
    kills = []
    for i in range(trials):
        if SOAK:
            kind = reached[i % len(reached)]
        else:
            kind = rng.choice([k for k in groups[i % len(groups)] if census.get(k)])
        kills.append(f"{kind}:{rng.randint(1, census[kind])}")
    return kills


def folder_problems(folder: Path, manifests: Path | None = None) -> list[str]:
    """What is corrupt in a run folder: run.json, config.json, args.json not JSON objects; a
    store that does not open or fails SQLite's integrity check; a line of log.jsonl before the
    last that is not JSON; a checkpoint that a manifest under ``manifests`` (default: the
    folder) lists and that does not verify. [] when all is sound."""
    from loopwise.checkpoint.errors import CorruptCheckpointError, UnverifiedCheckpointError
    from loopwise.checkpoint.hashing import check_file
    from loopwise.checkpoint.manifest import ManifestError, read_manifest
    from loopwise.checkpoint.named import NamedFiles
    from loopwise.record import RunReader
    from loopwise.record.errors import load_json_object

    problems = []
    for name in ("run.json", "config.json", "args.json"):
        if name != "args.json" or (folder / name).exists():
            try:
                load_json_object(folder / name, hint="")
            except (OSError, ValueError) as exc:
                problems.append(str(exc))
    try:
        with sqlite3.connect(f"file:{folder / 'store.sqlite'}?mode=ro", uri=True) as db:
            check = db.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            problems.append(f"store.sqlite: {check}")
        reader = RunReader(folder)
        for key in reader.keys():
            reader.series(key)
        reader.events()
    except Exception as exc:
        problems.append(f"store: {type(exc).__name__}: {exc}")
    lines = (folder / "log.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines[:-1]:
        try:
            json.loads(line)
        except ValueError:
            problems.append(f"log.jsonl: a line is not JSON: {line[:80]!r}")
    for manifest in sorted((manifests or folder).rglob("manifest.json")):
        try:
            entries = read_manifest(manifest)
        except ManifestError as exc:
            problems.append(str(exc))
            continue
        named = NamedFiles(manifest.parent)
        for entry in entries:
            if entry.source is not None:  # another name: verified against its owner's entry
                try:
                    named.check(entry.file)
                except CorruptCheckpointError as exc:
                    problems.append(str(exc))
                except UnverifiedCheckpointError:
                    pass  # its owner was rotated out (a kill before the prune): not corrupt
                continue
            path = manifest.parent / entry.file
            if all(check_file(path, ok) is not None for ok in entry.accepted):
                problems.append(f"{path}: {check_file(path, entry.stored)}")
    return problems


def record_loss(folder: Path, key: str, trace: Path) -> tuple[float, int]:
    """(seconds, steps) of training the killed process did that its record does not hold: from
    the last recorded row of ``key`` to the end of the last step before the kill (the trace has
    each step's end time)."""
    from loopwise.record import RunReader

    lines = trace.read_text().split()
    kill = float(lines[lines.index("kill") + 1]) if "kill" in lines else float(lines[-1])
    steps = [float(t) for t in lines if t != "kill" and float(t) <= kill]
    reader = RunReader(folder)
    times = list(reader.series(key).times) if key in reader.keys() else []
    last = max(times) if times else (steps[0] if steps else kill)
    end = max(steps, default=kill)  # killed after training (closing, exporting): nothing newer
    return max(0.0, end - last), max(0, sum(t > last for t in steps) - (1 if times else 0))


def mlflow_statuses(uri: str, run_id: str) -> list[str]:
    """The statuses of the MLflow runs that mirror the loopwise run ``run_id``."""
    from mlflow.tracking import MlflowClient

    from loopwise.export.mlflow import store_lock

    client = MlflowClient(uri)
    with store_lock(uri):  # the delivery processes may be making the store's tables right now
        experiment = client.get_experiment_by_name("loopwise")
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.`loopwise.run_id` = '{run_id}'")
    return [r.info.status for r in runs]


def same_weights(entry: str, a: Path, b: Path) -> bool:
    if entry == "keras":
        import numpy as np

        with np.load(a) as x, np.load(b) as y:
            return x.files == y.files and all(np.array_equal(x[k], y[k]) for k in x.files)
    import torch

    wa = torch.load(a, weights_only=True)
    wb = torch.load(b, weights_only=True)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@dataclass
class Trial:
    """One kill and its resume, and what was seen in between."""

    entry: str
    kill: str
    killed_rc: int = 0
    status_killed: str = ""
    problems_killed: list[str] = field(default_factory=list)
    lost_seconds: float = 0.0
    lost_steps: int = 0
    resumed_rc: int = 0
    status_resumed: str = ""
    problems_resumed: list[str] = field(default_factory=list)
    identical: bool = False
    mlflow_killed: list[str] = field(default_factory=list)
    mlflow_resumed: list[str] = field(default_factory=list)
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def loss_bound(self) -> float:
        return REFRESH[self.entry] + FLUSH + SLACK


def run_trial(entry: str, work: Path, reference: Path, kill: str) -> Trial:
    """Kill a fresh run of ``entry`` at ``kill``, look at what it left, resume it to the end."""
    from loopwise.record import RunReader

    root = work / "root"
    root.mkdir(parents=True)
    folder, out, trace = root / "run", work / reference.name, work / "trace"
    uri = f"sqlite:///{root.resolve()}/mlflow.db"
    trial = Trial(entry, kill)
    killed = run_child(entry, root, "run", out, "--kill", kill, "--trace", str(trace))
    trial.killed_rc, trial.stderr = killed.returncode, killed.stderr[-3000:]
    if killed.returncode != -signal.SIGKILL or not (folder / "run.json").is_file():
        return trial
    trial.status_killed = str(RunReader(folder).info["status"])
    trial.problems_killed = folder_problems(folder, root)
    trial.lost_seconds, trial.lost_steps = record_loss(folder, LOSS_KEY[entry], trace)
    if entry == "exporters":  # the delivery process outlives the kill and closes the mirror;
        # on a loaded machine it may not have made the MLflow run yet: wait for it too
        run_id, deadline = str(RunReader(folder).info["id"]), time.monotonic() + 90
        while True:
            trial.mlflow_killed = mlflow_statuses(uri, run_id)
            settled = trial.mlflow_killed and "RUNNING" not in trial.mlflow_killed
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    resumed = run_child(entry, root, "run", out)
    trial.resumed_rc, trial.stderr = resumed.returncode, resumed.stderr[-3000:]
    if resumed.returncode != 0:
        return trial
    trial.status_resumed = str(RunReader(folder).info["status"])
    trial.problems_resumed = folder_problems(folder, root)
    trial.identical = same_weights(entry, reference, out)
    trial.extra["record_end"] = record_end(folder, LOSS_KEY[entry])
    trial.extra["repeated_stored"], trial.extra["repeated_read"] = repeated_steps(folder)
    trial.extra["reference_end"] = record_end(reference.parent / "reference" / "run",
                                              LOSS_KEY[entry])
    if entry == "exporters":
        trial.mlflow_resumed = mlflow_statuses(uri, str(RunReader(folder).info["id"]))
        trial.extra["tensorboard_last_step"] = tensorboard_last_step(folder / "tensorboard")
    return trial


def record_end(folder: Path, key: str) -> tuple[int, list[tuple[int, float]]]:
    """The last step of ``key`` and the (step, epoch) points of the ``epoch`` series."""
    from loopwise.record import RunReader

    reader = RunReader(folder)
    epochs = reader.series("epoch")
    return max(reader.series(key).steps), list(zip(epochs.steps, epochs.values))


def repeated_steps(folder: Path) -> tuple[int, int]:
    """Steps that appear more than once in a series, over every series of the run: as stored
    (the killed process's rows and the resume's) and as ``RunReader.series`` returns them."""
    import numpy as np

    from loopwise.record import RunReader
    from loopwise.record.storefile import unpack

    conn = sqlite3.connect(folder / "store.sqlite")
    stored: dict[int, list[int]] = {}
    for key_id, blob in conn.execute("SELECT key_id, steps FROM scalar_chunks ORDER BY id"):
        stored.setdefault(key_id, []).extend(unpack("q", blob))
    conn.close()
    reader = RunReader(folder)
    read = [np.frombuffer(reader.series(k).steps, dtype=np.int64) for k in reader.keys()]
    return (sum(len(s) - len(set(s)) for s in stored.values()),
            sum(len(s) - len(np.unique(s)) for s in read))


def tensorboard_last_step(log_dir: Path) -> int:
    """The last step of ``loss`` in the TensorBoard event files (read by TensorBoard)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps = [0]
    for events in sorted(log_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        if "loss" in acc.Tags()["scalars"]:
            steps.extend(e.step for e in acc.Scalars("loss"))
    return max(steps)


def summary(trials: list[Trial]) -> str:
    """One line of figures for docs/reliability.md."""
    landed = [t for t in trials if t.killed_rc == -signal.SIGKILL]
    same = [t for t in landed if t.identical and t.status_resumed == "finished"]
    worst = max((t.lost_seconds for t in landed), default=0.0)
    steps = max((t.lost_steps for t in landed), default=0)
    kinds = sorted({t.kill.split(":")[0] for t in landed})
    return (f"{trials[0].entry if trials else '-'}: {len(trials)} kills ({', '.join(kinds)}), "
            f"{len(landed)} landed, {len(same)} resumed bit-identical and finished, "
            f"{sum(bool(t.problems_killed or t.problems_resumed) for t in landed)} with a "
            f"corrupt file, record loss at most {worst:.2f} s ({steps} steps), repeated steps "
            f"{sum(t.extra.get('repeated_stored', 0) for t in landed)} stored, "
            f"{sum(t.extra.get('repeated_read', 0) for t in landed)} read")
