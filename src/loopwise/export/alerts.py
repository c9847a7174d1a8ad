"""Prometheus alert rules for runs served by :class:`~loopwise.export.prometheus.
PrometheusExporter` (written by ``loopwise dashboards``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    duration: str
    severity: str
    summary: str


def alert_rules(*, gpu_temp_c: float = 85.0, memory_pct: float = 95.0,
                spike_factor: float = 3.0, stall_minutes: int = 10) -> list[Alert]:
    """The five alerts: non-finite loss, step counter stalled, loss spike, GPU temperature
    high, memory near full (host RAM or any GPU)."""
    for what, value, low in (("gpu_temp_c", gpu_temp_c, 0.0), ("memory_pct", memory_pct, 0.0),
                             ("spike_factor", spike_factor, 1.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > low:
            raise ValueError(f"{what} must be a number > {low:g}, got {value!r}")
    if memory_pct > 100:
        raise ValueError(f"memory_pct is a percentage (0-100], got {memory_pct!r}")
    if type(stall_minutes) is not int or stall_minutes < 1:
        raise ValueError(f"stall_minutes must be an int >= 1, got {stall_minutes!r}")
    ratio = memory_pct / 100.0
    return [
        Alert("LoopwiseNonFiniteLoss",
              'increase(loopwise_nonfinite_values_total{series="loss"}[5m]) > 0', "0m",
              "critical", "run {{ $labels.run }}: the loss became NaN or infinite"),
        Alert("LoopwiseStepStalled",
              f"loopwise_running == 1 and changes(loopwise_step[{stall_minutes}m]) == 0", "1m",
              "warning", f"run {{{{ $labels.run }}}}: no training step for {stall_minutes} "
              "minutes"),
        Alert("LoopwiseLossSpike",
              f'loopwise_metric{{series="loss"}} > {spike_factor:g} * '
              'avg_over_time(loopwise_metric{series="loss"}[30m]) and '
              'avg_over_time(loopwise_metric{series="loss"}[30m]) > 0', "0m",
              "warning", f"run {{{{ $labels.run }}}}: the loss is over {spike_factor:g}x its "
              "30-minute mean"),
        Alert("LoopwiseGpuTemperatureHigh",
              f'loopwise_system{{name=~"(rank[0-9]+/)?gpu[0-9]+_temp_c"}} > {gpu_temp_c:g}',
              "5m", "warning", f"run {{{{ $labels.run }}}}: {{{{ $labels.name }}}} above "
              f"{gpu_temp_c:g} C"),
        Alert("LoopwiseMemoryNearFull",
              f'loopwise_system{{name=~"(rank[0-9]+/)?ram_pct"}} > {memory_pct:g} or '
              f"loopwise_gpu_memory_used_ratio > {ratio:g}", "2m", "warning",
              f"run {{{{ $labels.run }}}}: memory above {memory_pct:g}%"),
    ]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def rules_yaml(alerts: list[Alert]) -> str:
    """The rules file (YAML) for ``rule_files:`` in ``prometheus.yml``."""
    lines = ["groups:", "  - name: loopwise", "    rules:"]
    for a in alerts:
        lines += [f"      - alert: {a.name}", f"        expr: {_quote(a.expr)}",
                  f"        for: {a.duration}", "        labels:",
                  f"          severity: {a.severity}", "        annotations:",
                  f"          summary: {_quote(a.summary)}"]
    return "\n".join(lines) + "\n"
