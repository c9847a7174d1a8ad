"""One answer to "is this an improvement?", shared by early stopping, LR-on-plateau, best
checkpoints and the plateau detector (the Keras ``MonitorCallback`` idea).

``Improvement(mode="min", min_delta=0.0)`` keeps the best value seen so far. ``is_better(value)``
answers without changing state; ``update(value)`` records the value and returns whether it was
an improvement. A value counts as better when it beats the best by more than ``min_delta``
(``value < best - min_delta`` in ``min`` mode, ``value > best + min_delta`` in ``max`` mode).
NaN is never an improvement.

``mode="auto"`` (the default of every class that monitors a metric) decides from the metric's
name, as Keras does: the name is cut into words at every character that is not a letter or a
digit (``val_top_5_acc`` -> ``val``, ``top``, ``5``, ``acc``) and a word (optionally followed by
digits) that names a score is maximised: ``acc``, ``accuracy``, ``auc``, ``auroc``, ``ap``,
``map``, ``f1``, ``fbeta``, ``fscore``, ``precision``, ``recall``, ``sensitivity``,
``specificity``, ``top1``/``top5``/``topk`` (top-k accuracy), ``iou``, ``miou``, ``jaccard``,
``dice``, ``kappa``, ``mcc``, ``r2``, ``bleu``, ``rouge``, ``psnr``, ``ssim``, ``ndcg``, ``mrr``,
``hit``, ``score``, ``reward``. Everything else (``loss``, ``mse``, ``error``, ``perplexity``,
``lr``, ...) is minimised, and a name with a loss-like word wins over a score word
(``acc_loss`` is minimised). The list lives in :func:`loopwise.record.stats.infer_mode` (the
record layer needs it too, for the best value of ``loopwise stats``). Pass ``mode="min"`` or
``"max"`` when the name says nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from loopwise.record.stats import infer_mode
from loopwise.utils.validate import check_non_negative

MODES = ("min", "max", "auto")


def check_mode(mode: object, *, allow_auto: bool = True) -> str:
    """Validate a ``mode`` argument (``"min"``, ``"max"`` or ``"auto"``) and return it."""
    allowed = MODES if allow_auto else ("min", "max")
    if mode not in allowed:
        raise ValueError(
            f"mode must be one of {', '.join(map(repr, allowed))}; got {mode!r}"
            + (" ('auto' reads the metric name: accuracy-like names are maximised, the rest "
               "minimised)" if allow_auto else "")
        )
    return str(mode)


def resolve_mode(mode: str, monitor: str | None) -> str:
    """``"min"`` or ``"max"``: ``mode`` itself, or for ``"auto"`` what the name ``monitor`` says."""
    check_mode(mode)
    if mode != "auto":
        return mode
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(
            "mode='auto' infers 'min' or 'max' from the monitored metric's name, and none was "
            f"given (monitor={monitor!r}); name the metric, or pass mode='min' or mode='max'"
        )
    return infer_mode(monitor)


@dataclass
class Improvement:
    """The best value so far of one monitored metric, and the rule that compares to it.

    ``mode="auto"`` needs ``monitor`` (the metric's name) and is resolved at once: ``mode`` then
    holds ``"min"`` or ``"max"``.
    """

    mode: str = "min"
    min_delta: float = 0.0
    best: float | None = None
    best_step: int | None = None
    _seen: int = field(default=0, repr=False)
    monitor: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        self.mode = resolve_mode(self.mode, self.monitor)
        self.min_delta = check_non_negative(self.min_delta, what="min_delta")

    def is_better(self, value: float) -> bool:
        """True when ``value`` improves on the best so far by more than ``min_delta``."""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value: float, step: int | None = None) -> bool:
        """Record ``value``; return True (and keep it as the new best) when it is better."""
        self._seen += 1
        if self.is_better(value):
            self.best = float(value)
            self.best_step = step if step is not None else self._seen
            return True
        return False

    def reset(self) -> None:
        self.best = None
        self.best_step = None
        self._seen = 0

    def state_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "min_delta": self.min_delta, "best": self.best,
                "best_step": self.best_step, "seen": self._seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("mode", "min_delta", "best", "best_step", "seen"):
            if key not in state:
                raise KeyError(f"Improvement state is missing {key!r}; was it saved by loopwise?")
        if state["mode"] != self.mode:
            what = f" of {self.monitor!r}" if self.monitor else ""
            raise ValueError(
                f"the saved state{what} was kept with mode {state['mode']!r}, this object has "
                f"mode {self.mode!r}; pass mode={state['mode']!r} to resume it as it was saved"
            )
        self.min_delta = float(state["min_delta"])
        self.best = state["best"]
        self.best_step = state["best_step"]
        self._seen = int(state["seen"])
