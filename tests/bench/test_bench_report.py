"""bench/_timing.py and the doc run_all writes (bench/_report.py): the rounds, the ratios and
the goals table; no timing is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _report import Outcome, write_doc
from _timing import Table, interleaved


def test_interleaved_rotates_the_first_variant_each_round() -> None:
    order: list[str] = []
    samples = interleaved({name: (lambda name=name: order.append(name) or len(order))
                           for name in "abc"}, rounds=3)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert samples == {"a": [1, 6, 8], "b": [2, 4, 9], "c": [3, 5, 7]}


def test_interleaved_refuses_zero_rounds() -> None:
    with pytest.raises(ValueError, match="rounds must be at least 1, got 0"):
        interleaved({"a": lambda: 1.0}, rounds=0)


def test_ratios_are_per_round_against_the_baseline_row() -> None:
    table = Table("t", "title", "us/step", baseline="plain")
    table.add("plain", [100.0, 200.0, 100.0])
    row = table.add("monitor", [110.0, 220.0, 300.0])
    assert row.ratio() == pytest.approx((1.1, 1.1, 3.0))
    assert row.stat() == (220.0, 110.0, 300.0)
    again = Table.from_dict(table.to_dict())
    assert again.markdown() == table.markdown()
    assert "| monitor | 220 | 110-300 | 1.10 (1.10-3.00) |" in table.markdown()


def test_the_doc_says_which_goals_are_missed_and_why(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    entry = Table("entry_tiny", "Per-step cost, tiny", "us/step",
                  baseline="plain PyTorch loop (baseline)", ratio_label="x plain loop")
    entry.add("plain PyTorch loop (baseline)", [300.0] * 5)
    entry.add("TrainingMonitor (defaults)", [303.0] * 5)
    entry.add("fit (defaults)", [450.0] * 5)
    doc = tmp_path / "benchmarks.md"
    info = {"cpu": "test CPU", "cores": "2", "memory": "1 GiB", "os": "Linux", "cuda": "none",
            "python": "3", "torch": "2", "numpy": "2", "commit": "abc", "load_start": "0"}
    write_doc(doc, [Outcome("entry", "entry_points.py", tables=[entry]),
                    Outcome("keras", "bench_keras.py",
                            status="not measured: this branch has no bench/bench_keras.py")],
              info, quick=False)
    text = doc.read_text()
    assert ("| TrainingMonitor, tiny model | <= 1.05x plain loop | 1.01x (1.01-1.01), +3.0 us/step "
            "| yes |") in text
    assert ("| fit, tiny model | <= 1.05x plain loop | 1.50x (1.50-1.50), +150.0 us/step "
            "| **no** |") in text
    assert "- **fit, tiny model (1.50x (1.50-1.50), +150.0 us/step)**: fit with its defaults" in text
    assert "| Workflow, tiny model | <= 1.05x plain loop | not measured | not measured |" in text
    assert "not measured: this branch has no bench/bench_keras.py." in text
    assert "This is a `--quick` pass" not in text
    assert (tmp_path / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_dashboard_goal_row_shows_the_peers_and_a_timeout(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    ui = Table("ui_peers", "First chart", "ms", baseline="loopwise dashboard (window)",
               ratio_label="x loopwise dashboard's time")
    ui.add("loopwise dashboard (window)", [400.0, 500.0, 1200.0])
    ui.add("TensorBoard, Time Series tab", [2000.0, 2500.0, 2400.0])
    ui.add("MLflow metric page (1,000,000 points)", [60000.0] * 3,
           note="**did not draw in 60 s** in 3 of 3")
    doc = tmp_path / "benchmarks.md"
    info = {"cpu": "test CPU", "cores": "2", "memory": "1 GiB", "os": "Linux", "cuda": "none",
            "python": "3", "torch": "2", "numpy": "2", "commit": "abc", "load_start": "0"}
    write_doc(doc, [Outcome("ui_peers", "bench_ui_peers.py", tables=[ui])], info, quick=False)
    text = doc.read_text()
    assert ("| dashboard first chart, 1M points, headless Chromium | < 1 s | 500 ms (peers, x "
            "its time: TensorBoard 5.00x, MLflow metric page 120x) | yes |") in text
    assert "## Dashboard first chart against TensorBoard's and MLflow's UIs" in text
    assert "| MLflow metric page (1,000,000 points) | 60,000 | 60,000-60,000 | 120 (50.0-150) " \
        "| **did not draw in 60 s** in 3 of 3 |" in text
    ui.rows[0].samples = [1500.0] * 3
    write_doc(doc, [Outcome("ui_peers", "bench_ui_peers.py", tables=[ui])], info, quick=False)
    assert "- **dashboard first chart, 1M points, headless Chromium (1,500 ms" in doc.read_text()


def test_the_cli_goals_are_rows_of_the_doc(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    start = Table("cli_startup", "Start-up", "ms", baseline="python -c pass (the interpreter)")
    start.add("python -c pass (the interpreter)", [15.0] * 3)
    start.add('python -c "import torch"', [1500.0] * 3)
    start.add("loopwise show RUN", [240.0, 250.0, 260.0])
    start.add("loopwise doctor RUN", [320.0] * 3)
    big = Table("cli_big", "Big run", "s", baseline="RunReader: every series read (baseline)")
    big.add("RunReader: every series read (baseline)", [1.0] * 3)
    big.add("loopwise show RUN", [1.5] * 3)
    big.add("loopwise doctor RUN", [2.5] * 3)
    big.add("loopwise export RUN --format csv", [6.0] * 3)
    doc = tmp_path / "benchmarks.md"
    info = {"cpu": "test CPU", "cores": "2", "memory": "1 GiB", "os": "Linux", "cuda": "none",
            "python": "3", "torch": "2", "numpy": "2", "commit": "abc", "load_start": "0"}
    write_doc(doc, [Outcome("cli", "bench_cli.py", tables=[start, big])], info, quick=False)
    text = doc.read_text()
    assert "| CLI start-up: loopwise show RUN | <= 0.3 s | 250 ms | yes |" in text
    assert "| CLI start-up: loopwise doctor RUN | <= 0.3 s | 320 ms | **no** |" in text
    assert "python -c pass" not in text.split("## Goals")[1].split("\n\n")[1]  # baselines
    assert ("| CLI on a 2,000,000-step, 5-metric run: doctor | <= 3 s | 2.50 s | yes |"
            in text)
    assert "| CLI on a 2,000,000-step, 5-metric run: CSV export | <= 5 s | 6.00 s | **no** |" \
        in text
    assert ("| CLI on a 2,000,000-step, 5-metric run: Parquet export | <= 5 s | not measured |"
            in text)
def test_the_backfill_goal_rows_come_from_the_million_point_table(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    table = Table("backfill_1000000", "Backfill", "s",
                  ratio_label="x MLflow's client by hand")
    table.add("TensorBoard: loopwise export --to tensorboard DIR", [1.2, 1.1, 1.4])
    table.add("MlflowClient.log_batch by hand, 1,000 per call", [150.0])
    table.add("MLflow: loopwise export --to mlflow URI", [95.0], baseline=[150.0])
    doc = tmp_path / "benchmarks.md"
    info = {"cpu": "test CPU", "cores": "2", "memory": "1 GiB", "os": "Linux", "cuda": "none",
            "python": "3", "torch": "2", "numpy": "2", "commit": "abc", "load_start": "0"}
    write_doc(doc, [Outcome("backfill", "bench_backfill.py", tables=[table])], info,
              quick=False)
    text = doc.read_text()
    assert ("| backfill of a 1,000,000-point run: TensorBoard (loopwise export --to) | <= 3 s "
            "| 1.20 s | yes |") in text
    assert ("| backfill of a 1,000,000-point run: MLflow (loopwise export --to) | <= 30 s "
            "| 95.0 s | **no** |") in text
    assert "SqlAlchemyStore._log_metrics" in text  # why it is behind
    assert "## Backfill of a recorded run: TensorBoard and MLflow" in text
    quick = Table("backfill_100000", "Backfill", "s")  # a --quick pass: no goal row measured
    quick.add("TensorBoard: loopwise export --to tensorboard DIR", [0.5])
    write_doc(doc, [Outcome("backfill", "bench_backfill.py", tables=[quick])], info,
              quick=True)
    assert ("| backfill of a 1,000,000-point run: TensorBoard (loopwise export --to) | <= 3 s "
            "| not measured | not measured |") in doc.read_text()
