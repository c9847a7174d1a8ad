"""Writes docs/benchmarks.md and its chart from the tables the bench scripts return (run_all)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _timing import Row, Table, fmt

PEERS = ["pytorch-lightning", "lightning", "keras", "tensorboard", "tensorflow-cpu",
         "tensorflow", "mlflow", "tqdm", "psutil", "matplotlib"]


@dataclass
class Outcome:
    key: str
    file: str
    status: str = "ok"
    tables: list[Table] = field(default_factory=list)
    text: str = ""
    seconds: float = 0.0

    def table(self, key: str) -> Table | None:
        return next((t for t in self.tables if t.key == key), None)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, str]:
    import numpy
    import psutil
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False, cwd=os.path.dirname(__file__)).stdout
    except OSError:
        commit = ""
    return {"cpu": cpu, "cores": str(os.cpu_count()),
            "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "commit": commit.strip() or "unknown",
            "load_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"}


def _row(table: Table | None, prefix: str) -> Row | None:
    if table is None:
        return None
    return next((r for r in table.rows if r.name.startswith(prefix)), None)


def _median_ratio(row: Row | None) -> float | None:
    r = None if row is None else row.ratio()
    return None if r is None else r[0]


def _added(table: Table | None, prefix: str) -> float | None:
    """Median over the rounds of (row - baseline row), in the table's unit."""
    row = _row(table, prefix)
    base = None if table is None or table.baseline is None else table.find(table.baseline)
    if row is None or base is None:
        return None
    return statistics.median(a - b for a, b in zip(row.samples, base.samples))


@dataclass
class Check:
    what: str
    goal: str
    value: float | None
    shown: str
    met: bool | None
    why: str  # printed when the goal is not met


def checks(by_key: dict[str, Table]) -> list[Check]:
    out: list[Check] = []

    def add(what: str, goal: str, value: float | None, shown: Callable[[float], str],
            ok: Callable[[float], bool], why: str) -> None:
        out.append(Check(what, goal, value, "not measured" if value is None else shown(value),
                         None if value is None else ok(value), why))

    for model in ("tiny", "mlp"):
        table = by_key.get(f"entry_{model}")
        for prefix, why in ENTRY_WHY.items():
            row = _row(table, prefix)
            spread = None if row is None else row.ratio()
            add(f"{prefix}, {model} model", "<= 1.05x plain loop", _median_ratio(row),
                lambda v, r=spread: f"{v:.2f}x" + ("" if r is None else
                                                    f" ({r[1]:.2f}-{r[2]:.2f})"),
                lambda v: v <= 1.05, why)
    add("TrainingMonitor bar with its record, tight loop", "<= 1 us/step above the bare loop",
        _added(by_key.get("bar"), "TrainingMonitor (run record"), lambda v: f"+{v:,.0f} ns",
        lambda v: v <= 1000, BAR_WHY)
    rate = by_key.get("store_rate")
    for prefix in ("Run.log_columns", "TrainingMonitor.log", "Run.log_scalars"):
        why = MONITOR_STORE_WHY if prefix.startswith("TrainingMonitor") else STORE_WHY
        row = _row(rate, prefix)
        add(f"{prefix}: scalars/s to disk", ">= 1,000,000 /s sustained",
            None if row is None else row.stat()[0], lambda v: f"{fmt(v)} /s",
            lambda v: v >= 1e6, why)
        row = _row(by_key.get("store_call"), prefix)
        add(f"{prefix}: cost on the calling thread", "<= 0.3 us/scalar",
            None if row is None else row.stat()[0], lambda v: f"{fmt(v)} us",
            lambda v: v <= 0.3, why)
    read = by_key.get("read")
    for prefix in ("TensorBoard", "MLflow"):
        add(f"read + downsample vs {prefix}", ">= 10x faster",
            _median_ratio(_row(read, prefix)), lambda v: f"{fmt(v)}x faster",
            lambda v: v >= 10, READ_WHY)
    ckpt = by_key.get("checkpoint")
    for prefix, limit in (("save_file", 1.25), ("CheckpointManager.save, sync", 1.25),
                          ("CheckpointManager.save, async", 0.2)):
        add(f"checkpoint: {prefix}", f"<= {limit}x the time of torch.save + fsync",
            _median_ratio(_row(ckpt, prefix)), lambda v: f"{v:.2f}x", lambda v, m=limit: v <= m,
            CHECKPOINT_WHY)
    for key, measure in (("exporters_step", "wall time per step"),
                         ("exporters_cpu", "training process CPU per step")):
        for prefix, what in (("TensorBoardExporter (", "TensorBoard"),
                             ("MLflowExporter, sqlite:/// (", "MLflow"),
                             ("PrometheusExporter", "Prometheus")):
            row = _row(by_key.get(key), prefix)
            spread = None if row is None else row.ratio()
            add(f"exporter attached: {what}, {measure}", "<= 1.05x the same loop with no "
                "exporter", _median_ratio(row),
                lambda v, r=spread: f"{v:.2f}x" + ("" if r is None else
                                                    f" ({r[1]:.2f}-{r[2]:.2f})"),
                lambda v: v <= 1.05, EXPORTER_STEP_WHY)
    rate_table = by_key.get("exporters_rate")
    for prefix, what in (("TensorBoardExporter", "TensorBoard vs SummaryWriter.add_scalar"),
                         ("MLflowExporter", "MLflow vs MlflowClient.log_metric")):
        add(f"exporter throughput: {what}", ">= 10x the backend's usual client",
            _median_ratio(_row(rate_table, prefix)), lambda v: f"{fmt(v)}x",
            lambda v: v >= 10, EXPORTER_RATE_WHY)
    mem = by_key.get("memory_tiny")
    add("memory added by TrainingMonitor (record on), tiny model", "<= 50 MiB RSS",
        _added(mem, "TrainingMonitor"), lambda v: f"+{v:.0f} MiB", lambda v: v <= 50,
        MEMORY_WHY)
    return out


ENTRY_WHY = {
    "TrainingMonitor": "The monitor's own step path is ~1-3 us of Python (two clock reads, an "
    "append, log()'s checks: the bar table), under 1 % of a tiny step; the rest is its threads: "
    "the run store's writer and the system sampler (psutil, 4 readings per 2 s) wake up on "
    "cores the training thread shares, which shows on a 2-core machine with other work on it.",
    "TrainingSession": "A session step is ~1.2-2 us of Python (its phase and step checks, the "
    "row, the shared accumulator's append and a bar update on every call: the bar table), "
    "plus the same background threads as the monitor.",
    "Workflow": "Workflow saves last_checkpoint.pth (model, optimizer, RNG states; fsynced) "
    "twice per epoch, after train_loop() and after evaluate(), so that a crash resumes at the "
    "last boundary; with the tiny model's 30-100 ms epochs these saves are a visible share. "
    "They are per epoch: longer epochs hide them.",
    "fit": "fit with its defaults also saves the best weights (fsynced) at every epoch whose "
    "loss improves, a periodic checkpoint every 10 epochs and an epoch log line, and reads "
    "the loss with .item() for its non-finite guard; with the tiny model's short epochs the "
    "end-of-epoch saves are the gap. They are per epoch: longer epochs hide them.",
}
BAR_WHY = ("A monitored step runs a Python iterator (two perf_counter reads, one append) and "
           "log() (a type check, a dict lookup and two appends per value): about 20-30 "
           "bytecode-level operations that cost 1-3 us on a slow or loaded VM. It is several "
           "times under tqdm + set_postfix and Keras's Progbar, which format every step.")
STORE_WHY = ("Run.log_scalars takes one dict per step on the calling thread; on a loaded "
             "2-core machine the writer thread's SQLite inserts compete with the caller for "
             "the cores and the GIL. The column path (what TrainingMonitor uses) avoids "
             "per-step objects.")
MONITOR_STORE_WHY = ("This row is the monitor's whole step (its iterator, two clock reads, "
                     "log()'s checks of the 10 values) divided by the 10 scalars logged per "
                     "step; the scalars reach the store as columns (the Run.log_columns row), "
                     "so the store itself adds almost nothing on the caller.")
READ_WHY = "loopwise reads one blob per column from SQLite; the peers decode one row or " \
           "one protobuf event per point in Python."
CHECKPOINT_WHY = ("A crash-safe save writes a temp file, hashes it (XXH3-128) while writing, "
                  "fsyncs it and its folder and renames it: more steps than a plain overwrite; "
                  "on disks where fresh blocks are expensive (thin-provisioned VM disks) the "
                  "difference grows (see benchmarks-notes.md, Checkpoints).")
EXPORTER_STEP_WHY = ("With delivery='process' the training process keeps two threads asleep "
                     "on pipes and a count of the points committed (its CPU per step is the "
                     "record's own: the CPU table); the delivery process reads the record "
                     "(SQLite WAL) itself and runs at nice 10. On a 2-core machine shared with "
                     "other jobs, that process's CPU (MLflow's client and SQLAlchemy, ~100-185 "
                     "us per point) still takes a core some of the time, which shows as wall "
                     "time; with delivery='thread' the same work also holds the GIL (the "
                     "thread rows).")
EXPORTER_RATE_WHY = ("TensorBoard's event files are written by the exporter without a "
                     "protobuf message per value and with the checksums of a batch computed "
                     "at once, but each point is still a framed record of its own: the same "
                     "format SummaryWriter writes, so the gain is the per-call overhead, not "
                     "an order of magnitude. MLflow's log_batch (1,000 metrics per call, "
                     "MLflow's limit) is where its order of magnitude over log_metric comes "
                     "from.")
MEMORY_WHY = ("The RSS added is mostly code: importing loopwise's modules (record, watch, "
              "SQLite, the health detectors, the system sampler with psutil) in a process "
              "that otherwise imports only torch; the window buffers are a few MB.")


SECTIONS: list[tuple[str, str, str]] = [
    ("entry_tiny", "Per-step cost of each entry point: tiny model",
     "Linear(32,1), MSE, SGD(lr=0.01), batch 32, a shuffled DataLoader of 3,200 rows (100 "
     "steps per epoch), one torch thread (`torch.set_num_threads(1)`, `OMP_NUM_THREADS=1`). "
     "`bench/entry_points.py` starts a fresh process per configuration and round (the "
     "configurations interleaved, the first one rotating each round). Each process times its "
     "steady state: from the end of its first epoch to the end of its last, read off the "
     "DataLoader's sampler (the time each epoch's last index is drawn), so set-up, imports "
     "and the first epoch are excluded and no framework gets a timing callback; the whole "
     "training call's time is in the note. Every loop reads the loss the way its docs show "
     "(plain loop and TrainingSession: `loss.item()`; TrainingMonitor and Workflow: "
     "`monitor.log({\"loss\": loss})`; Lightning: `self.log`). loopwise entry points run with "
     "their defaults (run record, system sampler every 2 s, bar). Lightning \"bare\": "
     "`logger=False, enable_progress_bar=False, enable_checkpointing=False, "
     "enable_model_summary=False`. Keras: `model.fit(loader, verbose=1)` with "
     "`KERAS_BACKEND=torch`, the same DataLoader. Goal: <= 1.05x the plain loop."),
    ("entry_mlp", "Per-step cost of each entry point: MLP 784-512-512-10",
     "The same configurations on an MLP 784-512-512-10 (ReLU), cross-entropy, Adam(1e-3), batch "
     "128, 6,400 random rows (50 steps per epoch), one torch thread."),
    ("memory_tiny", "Memory added to the training process",
     "RSS (psutil) at the end of training in the same fresh processes as the tiny-model rows; "
     "each row's added memory is the median over the rounds of (its RSS - the plain loop's "
     "RSS in the same round). Goal: TrainingMonitor with its record adds <= 50 MiB."),
    ("bar", "Tight-loop cost of a bar with 3 metrics",
     "`bench/bench_monitor.py`: a loop that only builds 3 floats, with each bar updated every "
     "step (all output to an in-memory stream; Keras's Progbar on a terminal-like one). One "
     "process, the variants interleaved. Goal: TrainingMonitor <= 1 us/step above the bare "
     "loop."),
    ("progressbar", "ProgressBar", "`bench/bench_progress.py`: the bar on its own."),
    ("session", "TrainingSession step", "`bench/bench_progress.py`: one session step, floats."),
    ("store_rate", "Scalars logged per second, to disk",
     "`bench/bench_store.py`: rows of 10 keys, one process, the writers interleaved. "
     "TensorBoard is `torch.utils.tensorboard.SummaryWriter.add_scalar`; MLflow runs on a "
     "`sqlite:///` store in a temp folder (`MLFLOW_DISABLE_TELEMETRY=true`) with "
     "`MlflowClient.log_metric` (one SQLite transaction per call, so only a few hundred calls "
     "per round) and `log_batch` (1,000 metrics per call, MLflow's limit). Goal: >= 1M "
     "scalars/s sustained."),
    ("store_call", "Cost per scalar on the calling thread",
     "The same rounds: the time the caller spends per scalar (the rest happens on the "
     "writer's thread, or not at all for the synchronous peers). Goal: <= 0.3 us."),
    ("checkpoint", "Checkpoints",
     "`bench/bench_checkpoint.py`: a state dict of float32 tensors of 8 MiB, saved with "
     "`torch.save` into a file + flush + fsync (the baseline), with `save_file` (loopwise's "
     "storage: temp file, XXH3-128 while writing, fsync, `os.replace`, fsync of the folder) and "
     "with `CheckpointManager.save` sync and async (the time the training thread is blocked). "
     "Goals: sync saves >= 0.8x the baseline's throughput (<= 1.25x its time); async "
     "blocking <= 0.2x the baseline's time."),
    ("exporters_step", "Exporters: per-step cost on the training thread",
     "`bench/bench_exporters.py`: a `TrainingMonitor` loop logging 3 floats per step, each step "
     "with a fixed Python busy loop (holding the GIL, like a fast step's own Python side), over "
     "a run with no exporter and with each exporter attached (`exporters=`/`run.add_exporter`), "
     "the variants interleaved round by round in one process. The time is the loop plus "
     "`run.flush()`, what the training thread waits for; every exporter delivers during the "
     "loop and is drained, untimed, before the next variant. MLflow uses a `sqlite:///` store in "
     "a temp folder. TensorBoard and MLflow deliver from a process of their own by default "
     "(`delivery='process'`, following the run's record); their `delivery='thread'` rows "
     "deliver from a thread of the training process. Goal: no cost beyond noise (<= 1.05x)."),
    ("exporters_cpu", "Exporters: CPU of the training process per step",
     "The same loops: `time.process_time()` of the training process (every thread of it, not "
     "the delivery process) per step. It does not count waiting for a core, so it shows what "
     "an exporter adds to the training process itself even on a busy machine."),
    ("exporters_rate", "Exporters: delivered throughput",
     "The same script: points per second each exporter delivers, fed from the record "
     "(`run.log_columns` of one series, timed until `exporter.flush()` says the backend has "
     "them), against its backend's client called the usual way: "
     "`SummaryWriter.add_scalar` per scalar then `flush()`, `MlflowClient.log_metric` per "
     "scalar (one SQLite transaction each: a few hundred per round), `Gauge.labels(...).set` "
     "per scalar. Goal: >= 10x the usual client."),
    ("read", "Read a long series, downsampled to 2,000 points",
     "`bench/bench_read.py`: each reader opens the store afresh each round and ends with the "
     "same 2,000-point min/max envelope (`loopwise.record.downsample`). MLflow "
     "(`get_metric_history`, sqlite) and TensorBoard (`EventAccumulator` with "
     "`size_guidance={\"scalars\": 0}`, every point) get fewer points than loopwise's "
     "1,000,000 because writing them takes minutes (~0.2 ms per point through MLflow's "
     "log_batch, ~40 us through SummaryWriter); each is compared with loopwise reading the "
     "same number of points, and the note gives seconds per million points (every reader "
     "here is linear in the points). Goal: >= 10x faster than both."),
]


def _section(table: Table, title: str, intro: str) -> list[str]:
    return [f"## {title}", "", intro, "", f"{table.title}.", "", table.markdown(), "",
            *[f"- {note}" for note in table.notes], ""]


def write_doc(path: Path, outcomes: list[Outcome], info: dict[str, str], *,
              quick: bool) -> None:
    from _chart import draw

    by_key = {t.key: t for o in outcomes for t in o.tables}
    lines = ["# Benchmarks", "",
             "Written by `make bench` (`bench/run_all.py`); do not edit by hand: rerun it. Each "
             "benchmark is also a plain script in `bench/` that prints its table. Every "
             "number is a median over the rounds with the min-max; ratios are against the "
             "baseline measured in the same rounds (configurations interleaved, the first "
             "one rotating, so that the machine's drift moves them together), median of the "
             "per-round ratios with their min-max. Nothing here is asserted by the test "
             "suite. Earlier measurements and the analysis behind the designs: "
             "[benchmarks-notes.md](benchmarks-notes.md).", "",
             "To reproduce: `make bench` (installs the `loopwise[bench]` extra: Lightning, "
             "Keras, TensorBoard, MLflow; ~20-25 min), `make bench BENCH_ARGS=--quick` for a "
             "short pass, or one script alone, e.g. `.venv/bin/python bench/entry_points.py "
             "--quick` (entry_points, bench_monitor, bench_progress, bench_store, bench_read, "
             "bench_checkpoint and bench_exporters take `--rounds N`, `--quick` and "
             "`--json PATH`).", ""]
    if quick:
        lines += ["**This is a `--quick` pass** (fewer rounds, smaller sizes, used while "
                  "developing): rerun `make bench` for the full numbers.", ""]
    lines += ["## Machine", "", "| | |", "|---|---|",
              f"| CPU | {info['cpu']}, {info['cores']} logical cores |",
              f"| memory | {info['memory']} |", f"| OS | {info['os']} |",
              f"| GPU | {info['cuda']} |",
              f"| Python / torch / numpy | {info['python']} / {info['torch']} / "
              f"{info['numpy']} |",
              f"| loopwise | commit {info['commit']} |",
              f"| load average (1, 5, 15 min) | at start {info['load_start']}; at end "
              f"{info.get('load_end', '?')} |",
              f"| whole run | {info.get('minutes', '?')} min |", "",
              "Peers: " + ", ".join(f"{name} {v}" for name in PEERS
                                    if (v := _version(name)) is not None) + ".", "",
              "![main ratios](benchmarks.png)", ""]
    found = checks(by_key)
    lines += ["## Goals", "", "| what | goal | measured | met |", "|---|---|---|---|"]
    for c in found:
        met = "not measured" if c.met is None else ("yes" if c.met else "**no**")
        lines.append(f"| {c.what} | {c.goal} | {c.shown} | {met} |")
    lines += ["", "### Where loopwise is behind, and why", ""]
    behind = [c for c in found if c.met is False]
    whys: list[str] = []
    for c in behind:
        if c.why not in whys:
            whys.append(c.why)
    if not behind:
        lines.append("Every goal measured in this run was met.")
    for why in whys:
        names = "; ".join(f"{c.what} ({c.shown})" for c in behind if c.why == why)
        lines += [f"- **{names}**: {why}"]
    lines += ["", "A ratio whose min-max (in brackets) reaches the goal is within this run's "
              "noise; rerun on a quiet machine before reading much into it.", "",
              "Not measured by this suite: the dashboard against the MLflow UI and "
              "TensorBoard's own UI (the dashboard's own timings are in Views below); a "
              "2-rank torchrun loop and the Keras callback (rows below say whether their "
              "scripts exist on this branch).", ""]
    for key, title, intro in SECTIONS:
        table = by_key.get(key)
        if table is not None:
            lines += _section(table, title, intro)
    known = {key for key, _, _ in SECTIONS}
    for o in outcomes:  # tables no section names (e.g. from the hooked scripts)
        for table in o.tables:
            if table.key not in known:
                lines += _section(table, table.title, f"`bench/{o.file}`.")
    for o in outcomes:
        if o.tables and o.status == "ok":
            continue
        lines += [f"## `bench/{o.file}`", ""]
        if o.status != "ok":
            lines += [f"{o.status}.", ""]
        if o.text:
            lines += ["```", o.text, "```", ""]
    lines += ["## Run times", "", "| script | seconds |", "|---|---|"]
    lines += [f"| {o.file} | {o.seconds:.0f} |" for o in outcomes if o.seconds]
    draw(path.with_suffix(".png"), by_key)
    path.write_text("\n".join(lines) + "\n")
