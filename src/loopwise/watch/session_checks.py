"""TrainingSession's phases and argument checks, each error saying what to do."""

from __future__ import annotations

from typing import Any

from torch import nn

from loopwise.record.recorder import check_exporters
from loopwise.record.run import Run
from loopwise.utils.validate import ArgumentTypeError, check_int, check_key

NEW, IDLE, TRAIN, TRAINED, VAL, VALIDATED = "new", "idle", "train", "trained", "val", "done"
WHEN = {NEW: "before start_training()", IDLE: "before start_epoch()", TRAIN: "during training",
        TRAINED: "after the training phase finished", VAL: "during validation",
        VALIDATED: "after validation finished"}


def check_session_args(model_name: Any, epochs: Any, steps_per_epoch: Any,
                       validation_steps: Any, model: Any, input_size: Any, run: Any,
                       record: Any, file: Any, clock: Any, exporters: Any
                       ) -> tuple[int, int, int]:
    """Refuse bad TrainingSession arguments before anything is made; ``epochs``,
    ``steps_per_epoch`` and ``validation_steps`` come back as ints."""
    check_key(model_name, what="model_name")
    counts = (check_int(epochs, what="epochs", minimum=1, hint="epochs to train"),
              check_int(steps_per_epoch, what="steps_per_epoch", minimum=1,
                        hint="batches in an epoch: the loader's len()"),
              check_int(validation_steps, what="validation_steps", minimum=0,
                        hint="batches of validation; 0: none"))
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if input_size is not None and model is None:
        raise ValueError("input_size needs model=: it is the input of the model's summary")
    if run is not None and not isinstance(run, Run):
        raise TypeError(f"run must be a loopwise Run, got {type(run).__name__}")
    if run is not None and not record:
        raise ValueError("run= was given with record=False; pass one or the other")
    if run is not None and run.closed:
        raise ValueError(f"run {run.name!r} is already closed; pass an open run")
    if file is not None and not callable(getattr(file, "write", None)):
        raise TypeError(f"file must be a text stream with write(), got {type(file).__name__}")
    if clock is not None and not callable(clock):
        raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
    check_exporters(exporters)
    return counts


def bad_step_error(step: object, total: int, what: str, last: int) -> Exception:
    """The error for a step number that is not the phase's next one."""
    if type(step) is not int:  # (the step path's own test, in the style of check_int)
        return ArgumentTypeError(f"step must be an int (the 1-based step of the phase), got "
                                 f"{type(step).__name__}")
    if step > total:
        return ValueError(f"step {step} is beyond {what}={total}; pass the loader's len() as "
                          f"{what}, or stop the phase at step {total}")
    if step < 1:
        return ValueError(f"steps are 1-based: the first step is 1, got {step}")
    return ValueError(f"step {step} is not after the previous step {last}; the steps of a "
                      "phase must increase")


def check_session_state(state: Any, epochs: int, *, started: bool) -> int:
    """The epoch of a TrainingSession ``state`` to continue after (checked)."""
    missing = {"epoch", "global_step", "history"} - set(state)
    if missing:
        raise KeyError(f"TrainingSession state is missing {sorted(missing)}")
    if started:
        raise RuntimeError("load_state_dict() must come before the first start_epoch()")
    return check_int(state["epoch"], what="the state's epoch", minimum=0, maximum=epochs,
                     hint=f"this session has {epochs} epochs")
