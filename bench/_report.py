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

from _texts import (
    BACKFILL_WHY,
    BAR_WHY,
    CHECKPOINT_WHY,
    CLI_WHY,
    ENTRY_WHY,
    EXPORTER_RATE_WHY,
    EXPORTER_STEP_WHY,
    KERAS_WHY,
    MEDIA_WHY,
    MEMORY_WHY,
    MONITOR_STORE_WHY,
    READ_WHY,
    RUNS_TABLE_WHY,
    SECTIONS,
    STORE_WHY,
    UI_WHY,
)
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

    for key, what, limit in (("entry_tiny", "tiny model", 1.05), ("entry_mlp", "mlp model", 1.05),
                             ("entry_tiny_3000", "tiny model, 3,000-step epochs", 1.02)):
        table = by_key.get(key)
        for prefix, why in ENTRY_WHY.items():
            row = _row(table, prefix)
            spread = None if row is None else row.ratio()
            us = _added(table, prefix)
            add(f"{prefix}, {what}", f"<= {limit}x plain loop", _median_ratio(row),
                lambda v, r=spread, us=us: f"{v:.2f}x" + ("" if r is None else
                                                           f" ({r[1]:.2f}-{r[2]:.2f})")
                + ("" if us is None else f", {us:+.1f} us/step"),
                lambda v, m=limit: v <= m, why)
    for key, what in (("entry_tiny", "tiny model"),
                      ("entry_tiny_3000", "tiny model, 3,000-step epochs")):
        table = by_key.get(key)  # the Keras callback against Keras fit with its own bar
        cb, kf = _row(table, "Keras fit + LoopwiseCallback"), _row(table, "Keras fit (")
        vs = None if cb is None or kf is None else [
            (a / b, a - b) for a, b in zip(cb.samples, kf.samples)]
        add(f"Keras fit + LoopwiseCallback, {what}", "<= 1.05x Keras fit with its bar",
            None if not vs else statistics.median(r for r, _ in vs),
            lambda v, vs=vs: f"{v:.2f}x" + ("" if not vs else
                                            f", {statistics.median(d for _, d in vs):+.1f} "
                                            "us/step"),
            lambda v: v <= 1.05, KERAS_WHY)
    for key, what in (("entry_thread_cpu_tiny", "tiny model"),
                      ("entry_thread_cpu_tiny_3000", "tiny model, 3,000-step epochs")):
        table = by_key.get(key)
        for prefix, why in ENTRY_WHY.items():
            add(f"{prefix}, {what}: CPU on the training thread", "<= 3 us/step above the "
                "plain loop", _added(table, prefix), lambda v: f"{v:+.1f} us/step",
                lambda v: v <= 3, why)
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
    for key, measure in (("verify_wall", "wall time"), ("verify_cpu", "CPU time")):
        row = _row(by_key.get(key), "with the checksum check (default)")
        spread = None if row is None else row.ratio()
        add(f"RunReader.series of 1M points with checksums, {measure}",
            "<= 1.05x the read without", _median_ratio(row),
            lambda v, r=spread: f"{v:.2f}x" + ("" if r is None else
                                                f" ({r[1]:.2f}-{r[2]:.2f})"),
            lambda v: v <= 1.05, "the hash of 24 MB (XXH3) against a read of ~35 ms")
    ui = by_key.get("ui_peers")
    dash = None if ui is None or ui.baseline is None else ui.find(ui.baseline)
    peers = "" if ui is None else ", ".join(
        f"{r.name.split(',')[0].split(' (')[0]} {fmt(ratio[0])}x"
        for r in ui.rows if (ratio := r.ratio()) is not None)
    add("dashboard first chart, 1M points, headless Chromium", "< 1 s",
        None if dash is None else dash.stat()[0] / 1e3,
        lambda v: f"{v * 1e3:,.0f} ms" + (f" (peers, x its time: {peers})" if peers else ""),
        lambda v: v < 1.0, UI_WHY)
    table = by_key.get("runs_table_1000")
    for name, goal, limit in (("table first render, headless Chromium", "<= 500 ms", 500.0),
                              ("/api/runs (warm)", "<= 200 ms", 200.0)):
        row = _row(table, name)
        add(f"run table, 1,000 runs: {name}", goal, None if row is None else row.stat()[0],
            lambda v: f"{v:,.0f} ms", lambda v, limit=limit: v <= limit, RUNS_TABLE_WHY)
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
    backfill = by_key.get("backfill_1000000")
    for prefix, goal in (("TensorBoard", 3.0), ("MLflow", 30.0)):
        row = _row(backfill, prefix)
        add(f"backfill of a 1,000,000-point run: {prefix} (loopwise export --to)",
            f"<= {goal:g} s", None if row is None else row.stat()[0],
            lambda v: f"{fmt(v)} s", lambda v, m=goal: v <= m, BACKFILL_WHY)
    row = _row(by_key.get("media_rate"), "Run.log_histogram")
    add("Run.log_histogram: histograms/s to disk", ">= 1,000 /s sustained",
        None if row is None else row.stat()[0], lambda v: f"{fmt(v)} /s",
        lambda v: v >= 1000, MEDIA_WHY)
    add("Run.log_histogram of a large tensor: caller cost", "<= 1x the copy (tensor.clone())",
        _median_ratio(_row(by_key.get("media_call"), "Run.log_histogram")),
        lambda v: f"{v:.2f}x", lambda v: v <= 1.0, MEDIA_WHY)
    start = by_key.get("cli_startup")
    for row in [] if start is None else start.rows:
        if row.name.startswith("loopwise"):
            add(f"CLI start-up: {row.name}", "<= 0.3 s", row.stat()[0] / 1e3,
                lambda v: f"{v * 1e3:,.0f} ms", lambda v: v <= 0.3, CLI_WHY)
    big = by_key.get("cli_big")
    for prefix, what, limit in (("loopwise doctor", "doctor", 3.0), ("loopwise show", "show", 3.0),
                                ("loopwise export RUN --format csv", "CSV export", 5.0),
                                ("loopwise export RUN --format parquet", "Parquet export", 5.0)):
        row = _row(big, prefix)
        add(f"CLI on a 2,000,000-step, 5-metric run: {what}", f"<= {limit:g} s",
            None if row is None else row.stat()[0], lambda v: f"{v:.2f} s",
            lambda v, limit=limit: v <= limit, CLI_WHY)
    mem = by_key.get("memory_tiny")
    add("memory added by TrainingMonitor (record on), tiny model", "<= 50 MiB RSS",
        _added(mem, "TrainingMonitor"), lambda v: f"+{v:.0f} MiB", lambda v: v <= 50,
        MEMORY_WHY)
    return out


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
             "bench_checkpoint, bench_exporters and bench_ui_peers take `--rounds N`, "
             "`--quick` and `--json PATH`).", ""]
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
              "The Keras callback and a 2-rank torchrun loop are measured by their own "
              "scripts, against Keras's `model.fit` with its own progress bar and a plain DDP "
              "loop: the sections `bench/bench_keras.py` and `bench/bench_distributed.py` "
              "below.", ""]
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
