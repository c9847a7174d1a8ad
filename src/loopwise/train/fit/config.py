"""``TrainingConfig``: the fit engine's parameters, with documented defaults.

A dataclass that validates every field on construction and on ``update()``, and saves to / loads
from JSON so that ``TrainingConfig.load(path) == config`` after ``config.save(path)``.

=======================  ==================  ==================================================
field                    default             meaning
=======================  ==================  ==================================================
model_name               "improved_model"    prefix of the files in the run folder
learning_rate            1e-3                optimizer learning rate (> 0)
batch_size               32                  samples per batch (>= 1)
epochs                   100                 maximum number of epochs (>= 1)
hidden_size              256                 width of the reference MLP's hidden layers
num_layers               3                   hidden layers of the reference MLP (>= 1)
dropout                  0.1                 dropout of the reference MLP, in [0, 1)
weight_decay             0.0                 optimizer weight decay (>= 0)
patience                 20                  early-stopping patience in epochs; 0 turns it off
lr_patience              10                  epochs without improvement before the LR is cut;
                                             0 turns LR-on-plateau off
lr_factor                0.5                 factor of each LR cut, in (0, 1)
min_lr                   1e-6                the LR is never cut below this (>= 0)
use_mixed_precision      False               AMP: bf16 autocast on the CPU, fp16 + GradScaler
                                             on CUDA
num_workers              0                   DataLoader worker processes (>= 0)
seed                     42                  seed of the split, the init and the shuffling
grad_clip                None                no clipping (as in a plain loop, Lightning and
                                             Keras); a number > 0 clips the global gradient
                                             norm to it and records the ``grad_norm`` series
checkpoint_every         10                  periodic checkpoint every N epochs; 0: off
keep_checkpoints         3                   periodic checkpoints kept on disk (>= 1)
val_split                0.1                 fraction held out for validation, in [0, 1)
test_split               0.1                 fraction held out for testing, in [0, 1)
max_nonfinite            5                   non-finite losses in a row that stop training;
                                             each one skips its step; 0 turns the guard off
max_oom_skips            5                   batches in a row skipped for out of memory (even
                                             in halves) that stop training with an error
                                             (>= 1)
device                   "auto"              "auto" (CUDA when available), "cpu", "cuda",
                                             "cuda:N" or "mps"
histogram_every          0                   weight and gradient histograms in the run every
                                             N epochs (at the epoch's end); 0: off
=======================  ==================  ==================================================

Numbers may be Python or NumPy scalars (``np.int64(64)``, ``np.float32(0.1)``): they are stored
as ``int`` / ``float`` (a float32 as the decimal it shows: ``0.1``). An unknown key, in the
constructor as in ``update()``, is an error that lists the valid keys.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwise.utils.validate import check_float, check_int, shown

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


# field -> (kind, bounds for utils.validate's check_int / check_float, what else to say).
# The numbers are checked by those checks, with their one message style (TypeError naming the
# type, ValueError naming the value), the field named ``TrainingConfig.<field>``.
_ABOVE_0 = {"minimum": 0, "open_min": True}
_AT_LEAST_0 = {"minimum": 0}
_AT_LEAST_1 = {"minimum": 1}
_FRACTION = {"minimum": 0, "maximum": 1, "open_max": True}
_RULES: dict[str, tuple[str, dict[str, Any], str]] = {
    "model_name": ("name", {}, "letters, digits, '-', '_' or '.', 1 to 100 characters"),
    "learning_rate": ("float", _ABOVE_0, ""),
    "batch_size": ("int", _AT_LEAST_1, ""),
    "epochs": ("int", _AT_LEAST_1, ""),
    "hidden_size": ("int", _AT_LEAST_1, ""),
    "num_layers": ("int", _AT_LEAST_1, ""),
    "dropout": ("float", _FRACTION, ""),
    "weight_decay": ("float", _AT_LEAST_0, ""),
    "patience": ("int", _AT_LEAST_0, "0 turns early stopping off"),
    "lr_patience": ("int", _AT_LEAST_0, "0 turns LR-on-plateau off"),
    "lr_factor": ("float", {"minimum": 0, "maximum": 1, "open_min": True, "open_max": True},
                  ""),
    "min_lr": ("float", _AT_LEAST_0, ""),
    "use_mixed_precision": ("bool", {}, "true or false"),
    "num_workers": ("int", _AT_LEAST_0, ""),
    "seed": ("int", _AT_LEAST_0, ""),
    "grad_clip": ("float?", _ABOVE_0, "or null for no clipping"),
    "checkpoint_every": ("int", _AT_LEAST_0, "0 turns it off"),
    "keep_checkpoints": ("int", _AT_LEAST_1, ""),
    "val_split": ("float", _FRACTION, ""),
    "test_split": ("float", _FRACTION, ""),
    "max_nonfinite": ("int", _AT_LEAST_0, "0 turns the guard off"),
    "max_oom_skips": ("int", _AT_LEAST_1, ""),
    "device": ("device", {}, "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    "histogram_every": ("int", _AT_LEAST_0, "0 turns them off"),
}

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _check(name: str, value: Any) -> Any:
    """Return ``value`` normalised for field ``name``, or raise naming the field and the rule."""
    kind, bounds, words = _RULES[name]
    what = f"TrainingConfig.{name}"
    if kind in ("bool", "name", "device"):
        bad = f"{what} must be {words}; got {shown(value)}"
        if kind == "bool":
            if not isinstance(value, bool):
                raise TypeError(bad)
            return value
        if not isinstance(value, str):
            raise TypeError(bad)
        ok = _NAME_RE.fullmatch(value) and ".." not in value if kind == "name" else \
            _DEVICE_RE.fullmatch(value)
        if not ok:
            raise ValueError(bad)
        return value
    if kind == "float?" and value is None:
        return None
    if kind == "int":
        # a whole float (3.0, as JSON may give it) is the int it shows; NumPy ints are ints
        if (isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral))
                and math.isfinite(float(value)) and float(value).is_integer()):
            value = int(float(value))
        return check_int(value, what=what, hint=words, **bounds)
    # a narrower float (np.float32(0.1)) keeps the decimal it shows: 0.1, not 0.100000001
    if (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and getattr(getattr(value, "dtype", None), "itemsize", 8) < 8):
        value = float(str(value))
    return check_float(value, what=what, hint=words, **bounds)


def _unknown(keys: list[str], where: str = "") -> ValueError:
    valid = ", ".join(_RULES)
    return ValueError(
        f"unknown TrainingConfig key{'s' if len(keys) > 1 else ''} "
        f"{', '.join(repr(k) for k in keys)}{where}; valid keys: {valid}"
    )


@dataclass
class TrainingConfig:
    """The parameters of a training run (see the module docstring for each field)."""

    model_name: str = "improved_model"
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 100
    hidden_size: int = 256
    num_layers: int = 3
    dropout: float = 0.1
    weight_decay: float = 0.0
    patience: int = 20
    lr_patience: int = 10
    lr_factor: float = 0.5
    min_lr: float = 1e-6
    use_mixed_precision: bool = False
    num_workers: int = 0
    seed: int = 42
    grad_clip: float | None = None
    checkpoint_every: int = 10
    keep_checkpoints: int = 3
    val_split: float = 0.1
    test_split: float = 0.1
    max_nonfinite: int = 5
    max_oom_skips: int = 5
    device: str = "auto"
    histogram_every: int = 0

    def __new__(cls, *args: Any, **kwargs: Any) -> TrainingConfig:
        # Before the dataclass __init__: an unknown keyword gets the list of valid keys, not
        # Python's "unexpected keyword argument".
        unknown = [k for k in kwargs if k not in _RULES]
        if unknown:
            raise _unknown(unknown)
        return super().__new__(cls)

    def __post_init__(self) -> None:
        _check_splits(self.val_split, self.test_split)

    def __setattr__(self, name: str, value: Any) -> None:
        # Every assignment is validated, so ``config.learnig_rate = 0.1`` (a typo) is an error
        # instead of a silently ignored attribute.
        if name not in _RULES:
            raise _unknown([name])
        value = _check(name, value)
        if name in ("val_split", "test_split"):
            other = "test_split" if name == "val_split" else "val_split"
            if other in self.__dict__:
                _check_splits(value, self.__dict__[other])
        object.__setattr__(self, name, value)

    def update(self, **kwargs: Any) -> TrainingConfig:
        """Set several fields at once; all are validated before any is changed. Returns self."""
        unknown = [k for k in kwargs if k not in _RULES]
        if unknown:
            raise _unknown(unknown)
        checked = {k: _check(k, v) for k, v in kwargs.items()}
        merged = {**self.to_dict(), **checked}
        _check_splits(merged["val_split"], merged["test_split"])
        for key, value in checked.items():
            object.__setattr__(self, key, value)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "") -> TrainingConfig:
        """Build from a dict; unknown keys are an error listing the valid ones."""
        if not isinstance(data, dict):
            raise TypeError(
                f"a TrainingConfig needs a dict of fields{source}, got {type(data).__name__}"
            )
        unknown = [k for k in data if k not in _RULES]
        if unknown:
            raise _unknown(unknown, source)
        return cls(**data)

    def save(self, path: str | Path) -> Path:
        """Write the config as JSON, atomically. Returns the path."""
        from loopwise.utils.atomic import atomic_write_text

        target = Path(path)
        atomic_write_text(target, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return target

    @classmethod
    def load(cls, path: str | Path) -> TrainingConfig:
        """Read a config saved by :meth:`save`. A corrupt file is an error naming file and line."""
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"no TrainingConfig file at {source}: check the path")
        again = "fix the file or save the config again"
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"{source}: not UTF-8 text (byte {exc.start}: {exc.reason}); "
                             f"{again}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{source}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}); "
                f"{again}"
            ) from None
        except RecursionError:
            raise ValueError(f"{source}: JSON nested too deeply to be a TrainingConfig; "
                             f"{again}") from None
        except ValueError as exc:  # an int of over 4300 digits
            raise ValueError(f"{source}: not JSON a TrainingConfig can hold ({exc}); "
                             f"{again}") from None
        return cls.from_dict(data, source=f" in {source}")

    @staticmethod
    def field_names() -> tuple[str, ...]:
        """The valid keys, in declaration order."""
        return tuple(_RULES)


def _check_splits(val_split: float, test_split: float) -> None:
    if val_split + test_split >= 1:
        raise ValueError(
            f"TrainingConfig.val_split + test_split must be < 1 to leave data for training; "
            f"got {val_split} + {test_split}"
        )
