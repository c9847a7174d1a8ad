"""The one decision about a run folder that is asked to train again, for fit and Workflow:
start it (**new**), continue it (**resume**), return what it did (**finished**), or **refuse**,
listing the differences between what was saved and what is given now.

``decide_rerun(folder, saved=..., current=..., finished=..., ...)``:

- no folder: ``new``;
- saved parameters (fit: the config, model, optimizer... in ``config.json``; Workflow: the
  trainer's ``args.json``) that differ from the current ones: :class:`RerunRefused` with one line
  per difference (``lr: 0.1 (saved) -> 0.01 (now)``, ``+ new: 3 (given now, not saved)``,
  ``- gone: 5 (saved, not given now)``; nested dicts as ``a.b``) and the way out, unless
  ``override`` (Workflow's ``override_args=True``): then the differences are returned, to record;
- ``finished``: ``finished`` (nothing to train);
- otherwise ``resume``.

It reads nothing and changes nothing: the callers check before they reopen anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RerunDecision", "RerunRefused", "decide_rerun", "differences"]


class RerunRefused(ValueError):
    """The run was asked to continue with other parameters than it was saved with."""

    def __init__(self, message: str, differences: list[str]) -> None:
        super().__init__(message)
        self.differences = differences


@dataclass(frozen=True)
class RerunDecision:
    """``action``: ``new``, ``resume`` or ``finished``; ``differences``: what differs (only with
    ``override``)."""

    action: str
    differences: list[str] = field(default_factory=list)


def differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Readable lines for what differs between ``saved`` and ``current`` (nested dicts
    flattened with dots)."""
    a, b = _flatten(saved), _flatten(current)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            lines.append(f"- {key}: {a[key]!r} (saved, not given now)")
        elif key not in a:
            lines.append(f"+ {key}: {b[key]!r} (given now, not saved)")
        elif a[key] != b[key]:
            lines.append(f"{key}: {a[key]!r} (saved) -> {b[key]!r} (now)")
    return lines


def decide_rerun(folder: str | Path, *, saved: Mapping[str, Any] | None,
                 current: Mapping[str, Any] | None, finished: bool, what: str,
                 saved_in: str | Path, way_out: str, override: bool = False) -> RerunDecision:
    """New, resume or finished for ``folder``, or :class:`RerunRefused` (see the module doc).
    ``what`` names the parameters (``"the parameters"``, ``"the args"``), ``saved_in`` the file
    that holds them, ``way_out`` what the user can do instead."""
    if not Path(folder).exists():
        return RerunDecision("new")
    diff = [] if saved is None or current is None else differences(saved, current)
    if diff and not override:
        raise RerunRefused(f"{what} differ from the ones saved in {saved_in}:\n  "
                           + "\n  ".join(diff) + f"\n{way_out}", diff)
    return RerunDecision("finished" if finished else "resume", diff)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
