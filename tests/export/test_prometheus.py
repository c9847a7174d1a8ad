"""Prometheus exporter scraped over HTTP, the alert rules under ``promtool``, a real
``prometheus`` scraping a short training, and the Grafana dashboard's queries."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
from _export_servers import binary, free_port, get, need, start, stop, wait_http

from loopwise import TrainingMonitor
from loopwise.cli import main
from loopwise.export.alerts import alert_rules
from loopwise.export.dashboards import write_dashboards
from loopwise.export.prometheus import PrometheusExporter
from loopwise.record import Run

need("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:non-finite values:RuntimeWarning")


def _scrape(exporter: PrometheusExporter) -> dict[str, list]:
    text = get(exporter.url).decode()
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def _value(samples: dict[str, list], metric: str, **labels: str) -> float:
    found = [s.value for s in samples.get(metric, [])
             if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (metric, labels, samples.get(metric))
    return float(found[0])


def _busy_run(tmp_path: Path, exporter: PrometheusExporter, steps: int = 30) -> Run:
    run = Run.create(tmp_path / "runs", name="busy")
    run.add_exporter(exporter)
    monitor = TrainingMonitor(range(steps), run=run, file=io.StringIO(), system=False,
                              health=False)
    for i in monitor:
        monitor.log({"loss": 1.0 / (i + 1) if i != 5 else float("nan")})
    run.log_epoch(1, {"loss": 0.25, "val_loss": 0.5})
    run.log_system({"cpu_pct": 30.0, "ram_pct": 60.0, "steps_per_s": 120.0,
                    "data_wait_pct": 12.5, "gpu0_temp_c": 70.0, "gpu0_mem_used_mib": 3000.0,
                    "gpu0_mem_total_mib": 12000.0}, wall_time=1_800_000_000.0)
    run.log_event("health.spike", "loss spiked", level="warning", data={"step": 7})
    run.log_event("health.spike", "loss spiked again", level="warning", data={"step": 9})
    run.log_event("health.plateau", "loss flat", level="info")
    run.flush()
    assert exporter.flush(30)
    return run


def test_a_scrape_holds_the_runs_latest_state(tmp_path):
    exporter = PrometheusExporter(port=0)
    run = _busy_run(tmp_path, exporter)
    try:
        s = _scrape(exporter)
        assert _value(s, "loopwise_metric", run="busy", series="loss") == pytest.approx(1 / 30)
        assert _value(s, "loopwise_metric", run="busy", series="epoch/val_loss") == 0.5
        assert _value(s, "loopwise_step", run="busy") == 30
        assert _value(s, "loopwise_steps_per_second", run="busy") == 120.0
        assert _value(s, "loopwise_data_wait_ratio", run="busy") == 0.125
        assert _value(s, "loopwise_system", run="busy", name="gpu0_temp_c") == 70.0
        assert _value(s, "loopwise_gpu_memory_used_ratio", run="busy", gpu="gpu0") == 0.25
        assert _value(s, "loopwise_nonfinite_values_total", run="busy", series="loss") == 1
        assert _value(s, "loopwise_health_events_total", run="busy", kind="spike") == 2
        assert _value(s, "loopwise_health_events_total", run="busy", kind="plateau") == 1
        assert _value(s, "loopwise_last_heartbeat_timestamp_seconds", run="busy") >= \
            1_800_000_000.0
        assert _value(s, "loopwise_running", run="busy") == 1
    finally:
        run.close()
    with pytest.raises(OSError):
        get(exporter.url)  # stopped with the run


def test_another_address_warns_and_a_busy_port_is_a_clear_error():
    with pytest.warns(UserWarning, match="reachable from other machines; the default is "
                                         "127.0.0.1"):
        other = PrometheusExporter(port=0, address="127.0.0.2")
    other.close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot serve on 127.0.0.1:{port} .*port=0"):
            PrometheusExporter(port=port)
    with pytest.raises(ValueError, match="port must be an int from 0 to 65535"):
        PrometheusExporter(port=70000)
    with pytest.raises(ValueError, match="PrometheusExporter supports delivery='thread' only"):
        PrometheusExporter(port=0, delivery="process")


def test_registries_are_private_per_exporter(tmp_path):
    a, b = PrometheusExporter(port=0, run_label="a"), PrometheusExporter(port=0, run_label="b")
    a.log_scalars({"loss": 1.0}, step=1)
    b.log_scalars({"loss": 2.0}, step=1)
    assert a.flush(10) and b.flush(10)
    try:
        assert {x.labels["run"] for x in _scrape(a)["loopwise_metric"]} == {"a"}
        assert {x.labels["run"] for x in _scrape(b)["loopwise_metric"]} == {"b"}
    finally:
        a.close()
        b.close()


def test_every_grafana_panel_queries_metrics_the_exporter_exposes(tmp_path):
    exporter = PrometheusExporter(port=0)
    run = _busy_run(tmp_path, exporter)
    try:
        exposed = set(_scrape(exporter))
    finally:
        run.close()
    files = write_dashboards(tmp_path / "dash")
    dashboard = json.loads((tmp_path / "dash/grafana/dashboards/loopwise.json").read_text())
    assert len(files) == 6
    titles = [p["title"] for p in dashboard["panels"]]
    assert {"Loss and metrics (per step)", "Throughput", "CPU and RAM",
            "Health events"} <= set(titles)
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = re.findall(r"loopwise_[a-z_]+", target["expr"])
            assert names, target["expr"]
            for name in names:
                assert name in exposed, (panel["title"], name)
    for rule in alert_rules():
        for name in re.findall(r"loopwise_[a-z_]+", rule.expr):
            assert name in exposed, (rule.name, name)


PROMTOOL_TESTS = """\
rule_files:
  - loopwise_alerts.yml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'loopwise_nonfinite_values_total{run="r",series="loss"}'
        values: '0 0 1 1 1'
    alert_rule_test:
      - eval_time: 1m
        alertname: LoopwiseNonFiniteLoss
        exp_alerts: []
      - eval_time: 3m
        alertname: LoopwiseNonFiniteLoss
        exp_alerts:
          - exp_labels: {severity: critical, run: r, series: loss}
            exp_annotations: {summary: 'run r: the loss became NaN or infinite'}
  - interval: 1m
    input_series:
      - series: 'loopwise_running{run="r"}'
        values: '1x30'
      - series: 'loopwise_step{run="r"}'
        values: '0+10x5 50x25'
    alert_rule_test:
      - eval_time: 5m
        alertname: LoopwiseStepStalled
        exp_alerts: []
      - eval_time: 20m
        alertname: LoopwiseStepStalled
        exp_alerts:
          - exp_labels: {severity: warning, run: r}
            exp_annotations: {summary: 'run r: no training step for 10 minutes'}
  - interval: 1m
    input_series:
      - series: 'loopwise_metric{run="r",series="loss"}'
        values: '1x20 10 10'
    alert_rule_test:
      - eval_time: 20m
        alertname: LoopwiseLossSpike
        exp_alerts: []
      - eval_time: 21m
        alertname: LoopwiseLossSpike
        exp_alerts:
          - exp_labels: {severity: warning, run: r, series: loss}
            exp_annotations: {summary: 'run r: the loss is over 3x its 30-minute mean'}
  - interval: 1m
    input_series:
      - series: 'loopwise_system{run="r",name="gpu0_temp_c"}'
        values: '80 90x10'
      - series: 'loopwise_system{run="r",name="gpu1_temp_c"}'
        values: '70x10'
    alert_rule_test:
      - eval_time: 3m
        alertname: LoopwiseGpuTemperatureHigh
        exp_alerts: []
      - eval_time: 8m
        alertname: LoopwiseGpuTemperatureHigh
        exp_alerts:
          - exp_labels: {severity: warning, run: r, name: gpu0_temp_c}
            exp_annotations: {summary: 'run r: gpu0_temp_c above 85 C'}
  - interval: 1m
    input_series:
      - series: 'loopwise_system{run="r",name="ram_pct"}'
        values: '50 97x10'
      - series: 'loopwise_gpu_memory_used_ratio{run="r",gpu="gpu0"}'
        values: '0.5x4 0.99x10'
    alert_rule_test:
      - eval_time: 2m
        alertname: LoopwiseMemoryNearFull
        exp_alerts: []
      - eval_time: 8m
        alertname: LoopwiseMemoryNearFull
        exp_alerts:
          - exp_labels: {severity: warning, run: r, name: ram_pct}
            exp_annotations: {summary: 'run r: memory above 95%'}
          - exp_labels: {severity: warning, run: r, gpu: gpu0}
            exp_annotations: {summary: 'run r: memory above 95%'}
"""


def test_promtool_checks_the_rules_and_the_config_and_every_alert_has_a_unit_test(tmp_path):
    promtool = binary("promtool")
    write_dashboards(tmp_path / "dash")
    folder = tmp_path / "dash" / "prometheus"
    check = subprocess.run([promtool, "check", "rules", str(folder / "loopwise_alerts.yml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 5 rules found" in check.stdout + check.stderr
    config = subprocess.run([promtool, "check", "config", str(folder / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert config.returncode == 0, config.stdout + config.stderr
    (folder / "alerts_test.yml").write_text(PROMTOOL_TESTS)
    tested = set(re.findall(r"alertname: (\w+)", PROMTOOL_TESTS))
    assert tested == {a.name for a in alert_rules()}
    result = subprocess.run([promtool, "test", "rules", str(folder / "alerts_test.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_unit_test_fails_when_an_alert_does_not_fire(tmp_path):
    """The promtool tests above can fail: a threshold the input does not reach is caught."""
    promtool = binary("promtool")
    write_dashboards(tmp_path / "dash", gpu_temp_c=95)
    folder = tmp_path / "dash" / "prometheus"
    (folder / "alerts_test.yml").write_text(PROMTOOL_TESTS)
    result = subprocess.run([promtool, "test", "rules", str(folder / "alerts_test.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "LoopwiseGpuTemperatureHigh" in result.stdout + result.stderr


def test_a_real_prometheus_scrapes_a_short_training(tmp_path):
    exe = binary("prometheus")
    exporter = PrometheusExporter(port=0)
    run = _busy_run(tmp_path, exporter)
    write_dashboards(tmp_path / "dash", targets=[f"127.0.0.1:{exporter.port}"],
                     scrape_interval="1s")
    port = free_port()
    log = tmp_path / "prometheus.log"
    proc = start([exe, f"--config.file={tmp_path / 'dash/prometheus/prometheus.yml'}",
                  f"--web.listen-address=127.0.0.1:{port}",
                  f"--storage.tsdb.path={tmp_path / 'tsdb'}"], log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/-/ready", proc, log, timeout=120)
        query = urllib.parse.quote('loopwise_metric{series="loss",run="busy"}')
        deadline = time.monotonic() + 120
        result: list = []
        while not result and time.monotonic() < deadline:
            answer = json.loads(get(f"{base}/api/v1/query?query={query}"))
            assert answer["status"] == "success"
            result = answer["data"]["result"]
            time.sleep(0.5)
        assert result, log.read_text()[-2000:]
        assert math.isclose(float(result[0]["value"][1]), 1 / 30, rel_tol=1e-9)
        assert result[0]["metric"]["job"] == "loopwise"
        rules = json.loads(get(f"{base}/api/v1/rules"))["data"]["groups"][0]["rules"]
        assert {r["name"] for r in rules} == {a.name for a in alert_rules()}
    finally:
        stop(proc)
        run.close()


def _compose_command() -> list[str]:
    """``docker compose`` (the plugin) or ``docker-compose`` (v1), or skip with the reason."""
    reasons = []
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True,
                               timeout=60)
        if probe.returncode == 0:
            return [docker, "compose"]
        reasons.append("docker has no compose plugin")
    else:
        reasons.append("no docker client")
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    pytest.skip(", ".join(reasons) + ", and no docker-compose")


def test_docker_compose_accepts_the_compose_file(tmp_path):
    compose = _compose_command()
    write_dashboards(tmp_path / "dash")
    result = subprocess.run([*compose, "config", "--quiet"], cwd=tmp_path / "dash",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (tmp_path / "dash" / "docker-compose.yml").write_text("services:\n  x: [not, a, map]\n")
    broken = subprocess.run([*compose, "config", "--quiet"], cwd=tmp_path / "dash",
                            capture_output=True, text=True, timeout=60)
    assert broken.returncode != 0  # the check can fail


def test_dashboards_cli_writes_the_files_and_refuses_bad_targets(tmp_path, capsys):
    assert main(["dashboards", "--out", str(tmp_path / "d"), "--port", "9200"]) == 0
    out = capsys.readouterr().out
    assert "docker compose up -d" in out
    text = (tmp_path / "d/prometheus/prometheus.yml").read_text()
    assert "targets: ['127.0.0.1:9200']" in text
    compose = (tmp_path / "d/docker-compose.yml").read_text()
    assert "--web.listen-address=127.0.0.1:9090" in compose
    assert main(["dashboards", "--out", str(tmp_path / "e"), "--target", "nohost"]) == 2
    assert "target 'nohost' is not 'host:port'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="gpu_temp_c must be a finite number > 0"):
        write_dashboards(tmp_path / "f", gpu_temp_c=-1)


def test_without_the_extra_the_error_names_the_pip_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"pip install 'loopwise\[prometheus\]'"):
        PrometheusExporter(port=0)


def test_counters_start_at_zero_so_the_nonfinite_alert_fires_for_fits_five_nan_guard(tmp_path):
    """The scrapes of a run that logs finite losses, then the 5 NaNs fit's guard stops at, fed
    to ``promtool test rules``: the counter is there at 0 before, so increase() sees the 5."""
    promtool = binary("promtool")
    exporter = PrometheusExporter(port=0)
    run = Run.create(tmp_path / "runs", name="guard")
    run.add_exporter(exporter)
    try:
        for step in range(1, 11):
            run.advance()
            run.log_scalars({"loss": 1.0 / step}, step=step)
        run.flush()
        assert exporter.flush(30)
        before = _scrape(exporter)
        for step in range(11, 16):  # NonFiniteGuard(max_in_row=5): fit stops here
            run.advance()
            run.log_scalars({"loss": float("nan")}, step=step)
        run.flush()
        assert exporter.flush(30)
        after = _scrape(exporter)
    finally:
        run.close()
    for kind in ("spike", "nonfinite", "plateau"):
        assert _value(before, "loopwise_health_events_total", run="guard", kind=kind) == 0
    first = _value(before, "loopwise_nonfinite_values_total", run="guard", series="loss")
    last = _value(after, "loopwise_nonfinite_values_total", run="guard", series="loss")
    assert (first, last) == (0, 5)
    write_dashboards(tmp_path / "dash")
    folder = tmp_path / "dash" / "prometheus"
    (folder / "guard_test.yml").write_text(f"""rule_files: [loopwise_alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'loopwise_nonfinite_values_total{{run="guard",series="loss"}}'
        values: '{first:g}x3 {last:g}x5'
    alert_rule_test:
      - eval_time: 2m
        alertname: LoopwiseNonFiniteLoss
        exp_alerts: []
      - eval_time: 5m
        alertname: LoopwiseNonFiniteLoss
        exp_alerts:
          - exp_labels: {{severity: critical, run: guard, series: loss}}
            exp_annotations: {{summary: 'run guard: the loss became NaN or infinite'}}
""")
    result = subprocess.run([promtool, "test", "rules", str(folder / "guard_test.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_health_kinds_are_the_detectors_names():
    from loopwise.export.prometheus import HEALTH_KINDS
    from loopwise.watch import health

    names = {getattr(health, n).name for n in health.__all__
             if n.endswith("Detector") and n not in ("Detector", "KeyedDetector")}
    assert set(HEALTH_KINDS) == names
