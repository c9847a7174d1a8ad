"""A live Prometheus endpoint for a run (``prometheus_client``, a private registry per exporter).

Served at ``http://127.0.0.1:<port>/metrics`` (loopback by default: another address exposes the
run to the network and is an explicit choice that warns). Every series carries the label
``run`` (the run's name); the label sets stay small (one value per series or system reading):

=========================================== ===========================================
``loopwise_metric{run,series}``             latest value of each scalar series (``loss``,
                                            ``epoch/val_loss``, ``lr``...)
``loopwise_step{run}``                      the run's global step
``loopwise_steps_per_second{run}``          training speed (the system sampler's reading)
``loopwise_data_wait_ratio{run}``           share of loop time spent waiting for data, 0-1
``loopwise_system{run,name}``               latest system reading (``cpu_pct``, ``gpu0_temp_c``...)
``loopwise_gpu_memory_used_ratio{run,gpu}`` GPU memory used / total, 0-1
``loopwise_nonfinite_values_total{run,series}`` NaN / inf values seen per series (0 from the
                                            series' first point)
``loopwise_health_events_total{run,kind}``  health findings by detector (0 for every detector
                                            from the start)
``loopwise_last_heartbeat_timestamp_seconds{run}`` wall time of the last data from the run
``loopwise_running{run}``                   1 while the run runs, 0 once it closed
=========================================== ===========================================
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from loopwise.export.base import Exporter
from loopwise.export.payload import EventRow, Sample
from loopwise.record.recorder import ColumnData
from loopwise.utils.validate import check_int

EXTRA = "pip install 'loopwise[prometheus]'"
DEFAULT_PORT = 9109
LOOPBACK = ("127.0.0.1", "::1", "localhost")
# the health detectors' names (loopwise.watch.health): their counters exist at 0 from the start
HEALTH_KINDS = ("input_bound", "memory_leak", "nonfinite", "overfitting", "plateau", "spike",
                "stalled", "trend")
_GPU_MEM = re.compile(r"^((?:rank\d+/)?gpu\d+)_mem_(used|total)_mib$")


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise ImportError(f"the Prometheus exporter needs prometheus_client: {EXTRA}") from exc
    return prometheus_client


class PrometheusExporter(Exporter):
    """Serve a run's latest state for Prometheus to scrape. ``port=0`` picks a free port (read
    it back from :attr:`port`); ``run_label`` overrides the ``run`` label (default: the run's
    name). The endpoint starts when the exporter is made and stops when the run closes."""

    backend = "prometheus"
    deliveries = ("thread",)  # the endpoint is served from the training process

    def __init__(self, port: int = DEFAULT_PORT, *, address: str = "127.0.0.1",
                 run_label: str | None = None, **delivery: Any) -> None:
        port = check_int(port, what="port", minimum=0, maximum=65535, hint="0: any free port")
        if not isinstance(address, str) or not address:
            raise ValueError(f"address must be an IP address or host name, got {address!r}")
        if run_label is not None and (not isinstance(run_label, str) or not run_label):
            raise ValueError(f"run_label must be a non-empty string, got {run_label!r}")
        client = _client()
        super().__init__(**delivery)
        if address not in LOOPBACK:
            warnings.warn(f"PrometheusExporter serves the run's metrics on {address}:{port}, "
                          "reachable from other machines; the default is 127.0.0.1",
                          stacklevel=2)
        self._run_label = run_label
        self.registry = client.CollectorRegistry(auto_describe=True)
        gauge, counter, reg = client.Gauge, client.Counter, self.registry
        self._metric = gauge("loopwise_metric", "Latest value of a scalar series",
                             ["run", "series"], registry=reg)
        self._step = gauge("loopwise_step", "The run's global step", ["run"], registry=reg)
        self._speed = gauge("loopwise_steps_per_second", "Training steps per second",
                            ["run"], registry=reg)
        self._wait = gauge("loopwise_data_wait_ratio", "Share of loop time waiting for data",
                           ["run"], registry=reg)
        self._system = gauge("loopwise_system", "Latest system reading", ["run", "name"],
                             registry=reg)
        self._gpu_mem = gauge("loopwise_gpu_memory_used_ratio", "GPU memory used / total",
                              ["run", "gpu"], registry=reg)
        self._nonfinite = counter("loopwise_nonfinite_values", "NaN or infinite values seen",
                                  ["run", "series"], registry=reg)
        self._health = counter("loopwise_health_events", "Health findings by detector",
                               ["run", "kind"], registry=reg)
        self._heartbeat = gauge("loopwise_last_heartbeat_timestamp_seconds",
                                "Wall time of the last data from the run", ["run"], registry=reg)
        self._running = gauge("loopwise_running", "1 while the run runs", ["run"], registry=reg)
        try:
            self._server, self._server_thread = client.start_http_server(
                port, addr=address, registry=reg)
        except OSError as exc:
            raise OSError(f"PrometheusExporter cannot serve on {address}:{port} ({exc}); "
                          "pick another port, or port=0 for any free one") from exc
        self.address = address
        self.port: int = int(self._server.server_port)
        self._gpu_readings: dict[str, dict[str, float]] = {}

    @property
    def url(self) -> str:
        """The scrape URL."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/metrics"

    def _label(self) -> str:
        if self._run_label is not None:
            return self._run_label
        return str(self.link.info().get("name", "loopwise"))

    # -- backend -------------------------------------------------------------------------------
    def _open(self) -> None:
        run = self._label()
        self._running.labels(run).set(1)
        for kind in HEALTH_KINDS:  # exported at 0 from the start: increase() sees the first one
            self._health.labels(run, kind)

    def _send_columns(self, columns: Mapping[str, ColumnData]) -> None:
        run = self._label()
        top, last_time = -1, 0.0
        for key, (steps, times, values) in columns.items():
            if not len(values):
                continue
            self._metric.labels(run, key).set(values[-1])
            counter = self._nonfinite.labels(run, key)  # at 0 from the series' first point
            bad = sum(1 for v in values if not math.isfinite(v))
            if bad:
                counter.inc(bad)
            top = max(top, max(steps))
            last_time = max(last_time, times[-1])
        if top >= 0:
            self._step.labels(run).set(max(top, self.link.global_step()))
            self._heartbeat.labels(run).set(last_time)

    def _send_system(self, samples: Sequence[Sample]) -> None:
        run = self._label()
        for sample in samples:
            for name, value in sample.values.items():
                self._system.labels(run, name).set(value)
                if name.endswith("steps_per_s"):
                    self._speed.labels(run).set(value)
                elif name.endswith("data_wait_pct"):
                    self._wait.labels(run).set(value / 100.0)
                match = _GPU_MEM.match(name)
                if match:
                    gpu = self._gpu_readings.setdefault(match.group(1), {})
                    gpu[match.group(2)] = value
                    if gpu.get("total"):
                        self._gpu_mem.labels(run, match.group(1)).set(
                            gpu.get("used", 0.0) / gpu["total"])
        if samples:
            self._heartbeat.labels(run).set(samples[-1].time)

    def _send_events(self, events: Sequence[EventRow]) -> None:
        run = self._label()
        for row in events:
            if row.kind.startswith("health."):
                self._health.labels(run, row.kind.removeprefix("health.")).inc()

    def _send_config(self, config: Mapping[str, Any]) -> None:
        """Prometheus takes no parameters (a label per config value would explode the label
        sets); the config stays in the record."""

    def _finish(self, status: str, error: str | None) -> None:
        self._running.labels(self._label()).set(0)

    def _release(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            self._server = None
            server.shutdown()
            server.server_close()
