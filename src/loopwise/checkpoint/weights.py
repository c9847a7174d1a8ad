"""``load_state_dict_safely(file_path, device)``: load saved weights without running pickles.

- ``torch.load(weights_only=True)``: a file holding arbitrary objects is refused, not executed;
- a file listed in the ``manifest.json`` beside it (loopwise's checkpoint storage: a best model,
  a reference-named checkpoint, a ``CheckpointManager`` file) is checked against its hash first;
- accepts a bare state dict or a checkpoint dict holding one (under ``model``, ``state_dict``
  or ``model_state_dict``, possibly inside ``state`` as in loopwise's checkpoint files);
- strips the ``module.`` prefix of DataParallel/DistributedDataParallel and the ``_orig_mod.``
  prefix of ``torch.compile``;
- with ``model=``, loads into it and reports missing and unexpected keys (a warning through
  ``logging`` and in the returned :class:`LoadReport`); a shape mismatch is an error naming the
  keys and both shapes.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from loopwise.checkpoint.named import verify_if_listed

PREFIXES = ("module.", "_orig_mod.")
NESTED_KEYS = ("state", "model", "state_dict", "model_state_dict")

log = logging.getLogger("loopwise.checkpoint.weights")


@dataclass
class LoadReport:
    """What :func:`load_state_dict_safely` did with a model."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def load_state_dict_safely(file_path: str | Path, device: str | torch.device = "cpu", *,
                           model: torch.nn.Module | None = None,
                           strict: bool = False) -> dict[str, torch.Tensor]:
    """Load the state dict in ``file_path`` onto ``device`` (and into ``model`` when given).

    ``strict=True`` turns missing or unexpected keys into an error instead of a warning.
    Returns the cleaned state dict (call :func:`load_into` yourself for the :class:`LoadReport`).
    """
    state = read_state_dict(file_path, device)
    if model is not None:
        load_into(model, state, strict=strict, source=str(file_path))
    return state


def read_state_dict(file_path: str | Path, device: str | torch.device = "cpu"
                    ) -> dict[str, torch.Tensor]:
    """The cleaned state dict stored in ``file_path`` (see the module docstring)."""
    path = Path(file_path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}; check the path")
    verify_if_listed(path)  # a file of loopwise's checkpoint storage: its hash is checked
    try:
        loaded = torch.load(path, map_location=torch.device(device), weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path} holds more than tensors and was not loaded (weights_only=True refuses "
            f"arbitrary pickled objects): {str(exc).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable PyTorch file (truncated or corrupt?): "
                         f"{exc}") from None
    state: Any = loaded
    for _ in range(3):  # a checkpoint payload nests the weights: ["state"]["model"]
        if not isinstance(state, Mapping) or any(isinstance(v, torch.Tensor)
                                                 for v in state.values()):
            break
        key = next((k for k in NESTED_KEYS if isinstance(state.get(k), Mapping)), None)
        if key is None:
            break
        state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor)
                                                 for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (name -> tensor); found "
                         f"{type(loaded).__name__}")
    return {strip_prefixes(str(k)): v for k, v in state.items()}


def strip_prefixes(key: str) -> str:
    """Remove leading ``module.`` / ``_orig_mod.`` prefixes from a parameter name."""
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                changed = True
    return key


def load_into(model: torch.nn.Module, state: Mapping[str, torch.Tensor], *,
              strict: bool = False, source: str = "the state dict") -> LoadReport:
    """Load ``state`` into ``model``; report missing/unexpected keys, refuse shape mismatches."""
    own = model.state_dict()
    mismatched = [f"{k}: saved {tuple(v.shape)}, model {tuple(own[k].shape)}"
                  for k, v in state.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        raise ValueError(f"{source} does not fit the model; shape mismatch for "
                         f"{'; '.join(mismatched)}")
    result = model.load_state_dict(dict(state), strict=False)
    report = LoadReport(list(result.missing_keys), list(result.unexpected_keys))
    if not report.ok:
        message = (f"{source}: missing keys {report.missing or 'none'}; "
                   f"unexpected keys {report.unexpected or 'none'}")
        if strict:
            raise ValueError(message + " (strict=True)")
        log.warning(message)
    return report
