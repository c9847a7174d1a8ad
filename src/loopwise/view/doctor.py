"""``loopwise doctor``: read a finished or crashed run and say what went wrong and what to try.

Three sources: the gradient histograms of the record (:mod:`loopwise.view.gradients`), the
health detectors of :mod:`loopwise.watch.health` replayed over the whole record
(:func:`~loopwise.watch.health.analyze_run`, which reads the record's epoch summaries as the
live epoch stream), and how the run ended (its status and its ``exception`` event).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from loopwise.record.intact import intact
from loopwise.record.jsonlog import check_jsonlog
from loopwise.record.reader import Event, RunReader
from loopwise.utils.text import printable
from loopwise.view.gradients import gradient_findings
from loopwise.watch.health import Finding, analyze_run

ADVICE = {
    "nonfinite": "lower the learning rate, clip gradients, check the inputs for NaN/inf, and "
                 "with mixed precision use a GradScaler",
    "spike": "lower the learning rate or add warm-up, clip gradients, and look at the batch "
             "seen at that step",
    "plateau": "lower the learning rate (ReduceLROnPlateau) or stop early: the model may have "
               "converged for this setup",
    "trend": "the metric is getting worse epoch after epoch: lower the learning rate, or stop "
             "at the best epoch",
    "overfitting": "stop early (EarlyStopping, restore the best weights), add regularisation "
                   "(weight decay, dropout, augmentation) or more data",
    "input_bound": "the accelerator waits for data: raise the DataLoader's num_workers, set "
                   "pin_memory and persistent_workers, cache expensive preprocessing",
    "memory_leak": "find tensors kept across steps (accumulate loss.item() or .detach(), not "
                   "the graph), and caches that only grow",
    "vanishing_gradient": "look for saturated activations (sigmoid/tanh: try ReLU or GELU), "
                          "dead ReLUs (lower the learning rate, LeakyReLU), a layer cut off "
                          "from the loss; add normalisation (LayerNorm/BatchNorm) or residual "
                          "connections",
    "exploding_gradient": "lower the learning rate, clip gradients (TrainingConfig(grad_clip="
                          "1.0)), add warm-up or normalisation; with mixed precision use a "
                          "GradScaler",
    "stalled": "a hung DataLoader worker, a deadlock or a hung collective: run with a timeout, "
               "and dump the stacks of a stuck process (py-spy dump --pid PID)",
}


@dataclass(frozen=True)
class Diagnosis:
    """What ``loopwise doctor`` found in one run."""

    name: str
    status: str
    ending: str
    ending_advice: str | None
    findings: list[Finding] = field(default_factory=list)
    recorded: list[Event] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Ended well (or still running), an intact record, no finding, and no warning or
        error recorded by the live detectors either."""
        return (self.status in ("finished", "running") and not self.findings
                and not self.damaged
                and not any(e.level in ("warning", "error") for e in self.recorded))


def _ending(reader: RunReader, info: dict[str, Any]) -> tuple[str, str | None]:
    status = str(info["status"])
    step = info.get("global_step")
    at = f" at step {step}" if isinstance(step, int) and step > 0 else ""
    if status == "finished":
        return f"the run finished{at}", None
    if status == "running":
        beat = info.get("heartbeat")
        ago = f" (last heartbeat {time.time() - beat:.0f} s ago)" if isinstance(
            beat, (int, float)) else ""
        return f"the run is still running{at}{ago}", None
    if status == "interrupted":
        return (f"the run was interrupted{at} (Ctrl-C or a termination signal)",
                "resume it from its last checkpoint when you want to continue")
    if status == "crashed":
        return (f"the writing process died without closing the run{at} (killed, the "
                "out-of-memory killer, a lost machine)",
                "look for the OOM killer in the kernel log (dmesg), then resume from the last "
                "checkpoint")
    if status == "failed":
        errors = reader.events(kind="exception")
        last = errors[-1].message if errors else str(info.get("error") or "").strip()
        last = last.splitlines()[-1] if last else "no traceback recorded"
        return f"the run failed{at} with: {last}", _error_advice(last)
    return f"the run ended as {status}{at}", None


def _error_advice(error: str) -> str:
    low = error.lower()
    if "out of memory" in low:
        return ("lower the batch size, use mixed precision or gradient accumulation, or free "
                "memory kept across steps")
    if "nan" in low or "inf" in low:
        return ADVICE["nonfinite"]
    return ("the full traceback is in run.json ('error') and in the run's exception event; "
            "fix it and resume from the last checkpoint")


def diagnose(reader: RunReader) -> Diagnosis:
    """Replay the run's record through the default health detectors and read how it ended."""
    if not isinstance(reader, RunReader):
        raise TypeError(f"reader must be a RunReader, got {type(reader).__name__}")
    reader = intact(reader)  # a damaged part is said, the others are still diagnosed
    info = reader.info
    ending, advice = _ending(reader, info)
    findings = analyze_run(reader) + gradient_findings(reader)
    recorded = [e for e in reader.events() if e.kind.startswith("health.")]
    damaged = [str(d) for d in reader.damage]
    log = check_jsonlog(reader.path)
    return Diagnosis(str(info.get("name", reader.path.name)), str(info["status"]), ending,
                     advice, findings, recorded, damaged + log)


def render_diagnosis(diagnosis: Diagnosis) -> str:
    """The diagnosis as text for a terminal (every name passed through ``printable``)."""
    lines = [f"run {printable(diagnosis.name)}: {printable(diagnosis.status)}",
             f"  ending: {printable(diagnosis.ending)}"]
    if diagnosis.ending_advice:
        lines.append(f"    try: {diagnosis.ending_advice}")
    for damage in diagnosis.damaged:
        lines.append(f"  record: {printable(damage)}")
    if not diagnosis.findings:
        lines.append("  health: no problems found by the detectors (nonfinite, spike, plateau, "
                     "trend, overfitting, input_bound, memory_leak, stalled, and the gradient "
                     "histograms)")
    else:
        lines.append(f"  health: {len(diagnosis.findings)} problem(s)")
        for f in diagnosis.findings:
            epoch = f.data.get("epoch")
            where = f"step {f.step}" if epoch is None else (
                f"epoch {epoch}" + (f" (step {f.step})" if f.step != epoch else ""))
            lines.append(f"  - [{f.detector}] {where}: {printable(f.message)}")
            if f.detector in ADVICE:
                lines.append(f"    try: {ADVICE[f.detector]}")
    if diagnosis.recorded:
        kinds = sorted({e.kind for e in diagnosis.recorded})
        lines.append(f"  recorded during training: {len(diagnosis.recorded)} health event(s) "
                     f"({printable(', '.join(kinds))})")
        for e in diagnosis.recorded[:10]:
            at = (e.data or {}).get("step") if isinstance(e.data, dict) else None
            lines.append(f"  - [{printable(e.kind)}]" + (f" step {at}" if at is not None else "")
                         + f": {printable(e.message)}")
    verdict = "healthy" if diagnosis.healthy else "needs attention"
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines)
