"""What the Keras callback reads from the model and writes to the run at the start of ``fit``
(used by :mod:`loopwise.keras.callback`): the config, the run (continued after a resume),
the model summary event, the learning rate and which metrics Keras computes as means."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopwise.record.folder import is_run_folder
from loopwise.record.opening import exists_error, open_run, reopen_run, run_finished
from loopwise.record.reader import RunReader
from loopwise.record.run import Run


def fit_config(params: Mapping[str, Any], model: Any,
               user: Mapping[str, Any]) -> dict[str, Any]:
    """``config.json`` of a Keras run: the fit parameters, the backend, the model's name and
    the user's config (which wins on a clash)."""
    import keras

    return {"epochs": params.get("epochs"), "steps": params.get("steps"),
            "verbose": params.get("verbose"), "keras_backend": keras.config.backend(),
            "model": str(getattr(model, "name", "")), **user}


def resumed_or_new_run(state: Mapping[str, Any] | None, root: str | os.PathLike[str],
                       name: str | None, config: Mapping[str, Any], *,
                       resume: bool = False) -> Run:
    """Through the one opener (:func:`~loopwise.record.opening.open_run`): the run a checkpoint
    was written into (reopened) when it still exists; with ``resume`` and no checkpoint yet
    (the process died before its first save), the unfinished run ``root/name`` again,
    restarted at step 0; else a new one (an existing, finished ``root/name`` is refused)."""
    previous = None if state is None or not state.get("run") else Path(str(state["run"]))
    if previous is not None and is_run_folder(previous):
        return reopen_run(previous)

    def decide(folder: Path, info: dict[str, Any]) -> str:
        if state is None and resume and not run_finished(info):
            return "resume"
        raise exists_error(folder)

    opened = open_run(root, name, config=config, decide=decide)
    run = opened.run
    assert run is not None
    if opened.action == "resume":
        run.restore_step(0, epoch=0)  # nothing was saved: training starts again from step 0
        run.set_config({**RunReader(run.path).config(), **config})
    return run


def summary_event(run: Run, model: Any) -> None:
    """The ``model_summary`` event: Keras's summary text and the parameter counts."""
    lines: list[str] = []
    try:
        model.summary(print_fn=lambda text, *a, **k: lines.append(str(text)))
    except ValueError:  # a model that is not built yet has no summary
        return
    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    total = int(model.count_params())
    run.log_event("model_summary", "\n".join(lines), data={
        "total_params": total, "trainable_params": trainable,
        "non_trainable_params": total - trainable})


def read_lr(model: Any) -> float | None:
    """The optimizer's current learning rate (a device read: once per epoch), None if none."""
    import keras

    lr = getattr(getattr(model, "optimizer", None), "learning_rate", None)
    try:
        return None if lr is None else float(keras.ops.convert_to_numpy(lr))
    except (TypeError, ValueError):
        return None


def mean_metric_names(model: Any) -> set[str]:
    """Names of the model's metrics that Keras computes as (weighted) means."""
    import keras

    names: set[str] = set()
    stack = list(getattr(model, "metrics", []))
    while stack:
        metric = stack.pop()
        stack.extend(getattr(metric, "metrics", []) if metric is not None else [])
        if isinstance(metric, keras.metrics.Mean):
            names.add(str(metric.name))
    return names


def has_accelerator() -> bool:
    """Whether Keras's backend trains on an accelerator, where reading a batch's logs is a
    device sync that asynchronous hook dispatch hides (``LoopwiseCallback(async_safe=None)``).
    TensorFlow: True (Keras calls its callbacks inline there whatever they say)."""
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        mps = getattr(torch.backends, "mps", None)
        return bool(torch.cuda.is_available() or (mps is not None and mps.is_available()))
    if backend == "jax":  # Keras imported it already (no stubs: an optional dependency)
        import importlib

        return bool(importlib.import_module("jax").default_backend() != "cpu")
    return True
