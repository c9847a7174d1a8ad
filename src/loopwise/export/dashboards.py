"""``loopwise dashboards``: a Prometheus + Grafana set-up for runs served by
:class:`~loopwise.export.prometheus.PrometheusExporter`.

Written under ``out`` (default ``./loopwise-dashboards``)::

    docker-compose.yml                                  Prometheus and Grafana, host network
    prometheus/prometheus.yml                           scrapes the exporter(s) every 5 s
    prometheus/loopwise_alerts.yml                      the alert rules (loopwise.export.alerts)
    grafana/provisioning/datasources/loopwise.yml       Prometheus as the default data source
    grafana/provisioning/dashboards/loopwise.yml        loads the dashboards folder
    grafana/dashboards/loopwise.json                    the dashboard

Both containers use the host's network and listen on 127.0.0.1 only (Prometheus :9090,
Grafana :3000), so that they reach an exporter bound to loopback, and nothing is exposed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loopwise.export.alerts import alert_rules, rules_yaml
from loopwise.export.prometheus import DEFAULT_PORT
from loopwise.utils.atomic import atomic_write_text

PROMETHEUS_IMAGE = "prom/prometheus:v2.53.0"
GRAFANA_IMAGE = "grafana/grafana:11.1.0"
RULES_FILE = "loopwise_alerts.yml"
_TARGET = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")

# (title, unit, [(expr, legend)]): every expr names metrics the exporter serves.
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Loss and metrics (per step)", "none",
     [('loopwise_metric{run=~"$run", series!~"epoch.*|lr.*"}', "{{run}} {{series}}")]),
    ("Epoch summaries", "none",
     [('loopwise_metric{run=~"$run", series=~"epoch/.+"}', "{{run}} {{series}}")]),
    ("Learning rate", "none",
     [('loopwise_metric{run=~"$run", series=~"lr.*|epoch/lr"}', "{{run}} {{series}}")]),
    ("Throughput", "none",
     [('loopwise_steps_per_second{run=~"$run"}', "{{run}} steps/s (sampler)"),
      ('rate(loopwise_step{run=~"$run"}[1m])', "{{run}} steps/s (from the step)")]),
    ("Global step", "none", [('loopwise_step{run=~"$run"}', "{{run}}")]),
    ("Data wait share", "percentunit",
     [('loopwise_data_wait_ratio{run=~"$run"}', "{{run}}")]),
    ("CPU and RAM", "percent",
     [('loopwise_system{run=~"$run", name=~"(rank[0-9]+/)?(cpu_pct|proc_cpu_pct|ram_pct)"}',
       "{{run}} {{name}}")]),
    ("GPU utilisation and temperature", "none",
     [('loopwise_system{run=~"$run", name=~"(rank[0-9]+/)?gpu[0-9]+_(util_pct|temp_c)"}',
       "{{run}} {{name}}")]),
    ("GPU memory used", "percentunit",
     [('loopwise_gpu_memory_used_ratio{run=~"$run"}', "{{run}} {{gpu}}")]),
    ("Health events", "none",
     [('increase(loopwise_health_events_total{run=~"$run"}[5m])', "{{run}} {{kind}}"),
      ('increase(loopwise_nonfinite_values_total{run=~"$run"}[5m])',
       "{{run}} non-finite {{series}}")]),
    ("Seconds since the last data", "s",
     [('time() - loopwise_last_heartbeat_timestamp_seconds{run=~"$run"}', "{{run}}"),
      ('loopwise_running{run=~"$run"}', "{{run}} running")]),
]


def grafana_dashboard() -> dict[str, Any]:
    """The dashboard model (Grafana JSON), with a ``run`` variable over the runs scraped."""
    panels = []
    for i, (title, unit, queries) in enumerate(PANELS):
        panels.append({
            "id": i + 1, "type": "timeseries", "title": title,
            "datasource": {"type": "prometheus", "uid": "loopwise-prometheus"},
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + j), "expr": expr, "legendFormat": legend,
                         "datasource": {"type": "prometheus", "uid": "loopwise-prometheus"}}
                        for j, (expr, legend) in enumerate(queries)],
        })
    return {
        "uid": "loopwise", "title": "loopwise training runs", "schemaVersion": 39,
        "version": 1, "editable": True, "refresh": "5s", "time": {"from": "now-1h", "to": "now"},
        "tags": ["loopwise"], "panels": panels,
        "templating": {"list": [{
            "name": "run", "label": "run", "type": "query", "includeAll": True, "multi": True,
            "current": {"text": "All", "value": "$__all"}, "refresh": 2,
            "datasource": {"type": "prometheus", "uid": "loopwise-prometheus"},
            "query": {"query": "label_values(loopwise_step, run)", "refId": "run"},
            "definition": "label_values(loopwise_step, run)"}]},
    }


def prometheus_yaml(targets: Sequence[str], *, scrape_interval: str) -> str:
    listed = ", ".join(f"'{t}'" for t in targets)
    return (f"global:\n  scrape_interval: {scrape_interval}\n"
            f"  evaluation_interval: {scrape_interval}\n"
            f"rule_files:\n  - {RULES_FILE}\n"
            "scrape_configs:\n  - job_name: loopwise\n"
            f"    static_configs:\n      - targets: [{listed}]\n")


def _compose() -> str:
    return f"""services:
  prometheus:
    image: {PROMETHEUS_IMAGE}
    network_mode: host
    command:
      - --config.file=/etc/prometheus/prometheus.yml
      - --web.listen-address=127.0.0.1:9090
    volumes:
      - ./prometheus:/etc/prometheus:ro
  grafana:
    image: {GRAFANA_IMAGE}
    network_mode: host
    environment:
      GF_SERVER_HTTP_ADDR: 127.0.0.1
      GF_SERVER_HTTP_PORT: "3000"
    volumes:
      - ./grafana/provisioning:/etc/grafana/provisioning:ro
      - ./grafana/dashboards:/var/lib/grafana/dashboards:ro
    depends_on:
      - prometheus
"""


_DATASOURCE = """apiVersion: 1
datasources:
  - name: Prometheus (loopwise)
    uid: loopwise-prometheus
    type: prometheus
    access: proxy
    url: http://127.0.0.1:9090
    isDefault: true
"""

_PROVIDER = """apiVersion: 1
providers:
  - name: loopwise
    type: file
    options:
      path: /var/lib/grafana/dashboards
"""


def write_dashboards(out: str | os.PathLike[str] = "loopwise-dashboards", *,
                     targets: Sequence[str] = (f"127.0.0.1:{DEFAULT_PORT}",),
                     scrape_interval: str = "5s", **thresholds: Any) -> list[Path]:
    """Write the Prometheus + Grafana set-up under ``out``; returns the files written.
    ``targets``: the exporters' ``host:port``; ``thresholds``: options of
    :func:`~loopwise.export.alerts.alert_rules` (``gpu_temp_c``, ``memory_pct``...)."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path, got {type(out).__name__}")
    if isinstance(targets, str) or not targets:
        raise ValueError("targets must be a non-empty list of 'host:port' strings, e.g. "
                         f"['127.0.0.1:{DEFAULT_PORT}']")
    for target in targets:
        if not isinstance(target, str) or not _TARGET.match(target):
            raise ValueError(f"target {target!r} is not 'host:port' (e.g. 127.0.0.1:9109)")
    if not isinstance(scrape_interval, str) or not re.fullmatch(r"\d+(ms|s|m)",
                                                                scrape_interval):
        raise ValueError(f"scrape_interval must be a Prometheus duration such as '5s', got "
                         f"{scrape_interval!r}")
    root = Path(out)
    files = {
        "docker-compose.yml": _compose(),
        "prometheus/prometheus.yml": prometheus_yaml(targets, scrape_interval=scrape_interval),
        f"prometheus/{RULES_FILE}": rules_yaml(alert_rules(**thresholds)),
        "grafana/provisioning/datasources/loopwise.yml": _DATASOURCE,
        "grafana/provisioning/dashboards/loopwise.yml": _PROVIDER,
        "grafana/dashboards/loopwise.json": json.dumps(grafana_dashboard(), indent=2) + "\n",
    }
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
        written.append(path)
    return written
