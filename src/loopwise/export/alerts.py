"""Prometheus alert rules for runs served by :class:`~loopwise.export.prometheus.
PrometheusExporter` (written by ``loopwise dashboards``)."""

from __future__ import annotations

from dataclasses import dataclass

from loopwise.utils.validate import check_float, check_int, check_positive


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
    check_positive(gpu_temp_c, what="gpu_temp_c", hint="degrees Celsius")
    memory_pct = check_float(memory_pct, what="memory_pct", minimum=0, maximum=100,
                             open_min=True, hint="a percentage")
    check_float(spike_factor, what="spike_factor", minimum=1, open_min=True,
                hint="times the recent loss")
    stall_minutes = check_int(stall_minutes, what="stall_minutes", minimum=1,
                              hint="minutes without a new step before the alert fires")
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
