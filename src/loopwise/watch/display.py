"""One display rule for every value loopwise prints: TrainingMonitor's postfix, ProgressBar,
TrainingSession's lines and the epoch summary.

**Percentages.** A value shows as a percentage (``0.125`` -> ``12.50%``) when its *name* is an
accuracy and the value is in ``[0, 1]``. The name's base is the part after the last ``/`` with
one ``train_``, ``val_`` or ``test_`` prefix removed, compared without case. It is an accuracy
when the base is ``acc`` or ``accuracy``, ends with ``_acc`` or ``_accuracy`` (``top5_acc``,
``balanced_accuracy``), or is ``top<k>`` (``top1``, ``top5``). Nothing else is: ``acc_steps``,
``grad_accum_steps``, ``precision``, ``recall``, ``f1``, ``auc`` stay numbers, as scikit-learn
and Keras print them. An accuracy outside ``[0, 1]`` (someone logging ``90.0``) is shown as a
number, never as ``9000.00%``; an int is a count, never a percentage (``grad_acc=1``).

**Numbers.** An int (Python or NumPy) is shown as an int (``4``). A float with
``1e-3 <= |v| < 1e5`` gets four decimals (``0.2310``, ``2.3089``, ``12.0000``), any other
(``1.0000e-04``, ``1.2346e+05``) four decimals of scientific notation, and zero is ``0.0000``:
Keras's rule, and the reference's ``Loss: 2.3089``. Fixed decimals keep the line from jumping
as the value changes. NaN and infinities are ``nan``, ``inf``, ``-inf``.

**Rates.** One unit, ``batch/s``, never inverted: ``6.45batch/s``; ``0.25batch/s`` for a slow
loop (tqdm switches to ``4.00s/it``; one unit means two rates can be compared at a glance).
Two decimals, or two significant digits below 0.01 (``0.0012batch/s``); ``?batch/s`` before
anything was done.

**Last value, not the running mean.** :func:`shows_last` names the values a running mean would
misrepresent: the learning rate (``lr``, ``lr/...``, ``learning_rate``, any ``.../lr``),
validation values (a base starting with ``val_``, or a name starting with ``val/``), and any
name in ``stateful`` (Keras's ``stateful_metrics``). :func:`shown_values` picks, per name, the
mean or the last value.

Names are user text: they pass through :func:`loopwise.utils.text.printable`.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Collection, Mapping
from types import MappingProxyType

from loopwise.utils.text import printable
from loopwise.utils.validate import check_key

RATE_UNIT = "batch"
"""The unit of every rate loopwise shows (``<rate>batch/s``)."""

LABELS: Mapping[str, str] = MappingProxyType({"loss": "Loss", "accuracy": "Accuracy"})
"""``style="label"`` capitalises these names (the reference's ``Loss: 2.3089, Accuracy: ...``)."""

_SPLIT_PREFIXES = ("train_", "val_", "test_")
_ACCURACY = re.compile(r"(acc|accuracy|.+_acc|.+_accuracy|top\d+)")
_LR = ("lr", "learning_rate")


def base_name(name: str) -> str:
    """The part after the last ``/``, without one ``train_``/``val_``/``test_`` prefix."""
    base = name.rsplit("/", 1)[-1]
    for prefix in _SPLIT_PREFIXES:
        if base.startswith(prefix) and len(base) > len(prefix):
            return base[len(prefix):]
    return base


def is_percentage(name: str) -> bool:
    """Whether ``name`` is an accuracy, shown as a percentage when its value is in [0, 1]."""
    return _ACCURACY.fullmatch(base_name(_check_name(name)).lower()) is not None


def shows_last(name: str, stateful: Collection[str] = frozenset()) -> bool:
    """True when ``name`` should be shown as its last value rather than its running mean: the
    learning rate, validation values, and the names in ``stateful``."""
    return _shows_last(_check_name(name), _check_stateful(stateful))


def _shows_last(name: str, stateful: Collection[str]) -> bool:
    if name in stateful:
        return True
    lower = name.lower()
    last = lower.rsplit("/", 1)[-1]
    if last in _LR or lower.startswith("lr/") or lower.startswith("val/"):
        return True
    return last.startswith("val_")


def shown_values(means: Mapping[str, float], last: Mapping[str, float], *,
                 stateful: Collection[str] = frozenset()) -> dict[str, float]:
    """``means`` in their order, each replaced by its ``last`` value where :func:`shows_last`
    says so (and a last value is known)."""
    stateful = _check_stateful(stateful)
    if not isinstance(means, Mapping) or not isinstance(last, Mapping):
        raise TypeError("means and last must be mappings of name -> number, got "
                        f"{type(means).__name__} and {type(last).__name__}")
    return {k: (last[k] if k in last and _shows_last(k, stateful) else v)
            for k, v in means.items()}


def format_value(name: str, value: float) -> str:
    """One value as loopwise shows it: ``12.50%``, ``0.2310``, ``1.0000e-04``, ``4``, ``nan``."""
    _check_name(name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"the value of {printable(name)!r} must be a real number (int or "
                        f"float), got {type(value).__name__}")
    integral = isinstance(value, numbers.Integral)
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if integral:
        return str(int(value))
    if 0.0 <= v <= 1.0 and is_percentage(name):
        return f"{v * 100 + 0.0:.2f}%"
    if v == 0.0:
        return "0.0000"
    if 1e-3 <= abs(v) < 1e5:
        return f"{v:.4f}"
    return f"{v:.4e}"


def format_metrics(values: Mapping[str, float], *, sep: str = ", ", style: str = "kv") -> str:
    """The values in the mapping's order: ``loss=0.2310, accuracy=90.00%`` (``style="kv"``, a
    bar's postfix) or ``Loss: 0.2310, Accuracy: 90.00%`` (``style="label"``); ``""`` for none."""
    if not isinstance(values, Mapping):
        raise TypeError(f"values must be a mapping of name -> number, got {type(values).__name__}")
    if not isinstance(sep, str):
        raise TypeError(f"sep must be a string, got {type(sep).__name__}")
    if style == "kv":
        return sep.join(f"{printable(k)}={format_value(k, v)}" for k, v in values.items())
    if style == "label":
        return sep.join(f"{LABELS.get(k, printable(k))}: {format_value(k, v)}"
                        for k, v in values.items())
    raise ValueError(f"style must be 'kv' (loss=0.2310) or 'label' (Loss: 0.2310), got {style!r}")


def format_rate(n: int | float, seconds: float) -> str:
    """The average rate of ``n`` steps in ``seconds``: ``6.45batch/s``; ``?batch/s`` when
    nothing was done yet or no time has passed."""
    for what, x in (("n", n), ("seconds", seconds)):
        if isinstance(x, bool) or not isinstance(x, numbers.Real) or not x >= 0:
            raise ValueError(f"{what} must be a number >= 0, got {x!r}")
    if n == 0 or seconds <= 0 or math.isinf(seconds):
        return f"?{RATE_UNIT}/s"
    rate = float(n) / float(seconds)
    if math.isinf(rate):
        return f"?{RATE_UNIT}/s"
    text = f"{rate:.2f}" if rate >= 0.01 else f"{rate:.2g}"
    return f"{text}{RATE_UNIT}/s"


def _check_name(name: object) -> str:
    return check_key(name, what="a metric name")  # the one key rule


def _check_stateful(stateful: object) -> Collection[str]:
    if isinstance(stateful, str) or not isinstance(stateful, Collection):
        raise TypeError("stateful must be a collection of metric names (a set or list of "
                        f"strings), got {type(stateful).__name__} {stateful!r:.60}")
    for name in stateful:
        _check_name(name)
    return stateful
