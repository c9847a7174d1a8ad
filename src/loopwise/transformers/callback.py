"""``LoopwiseCallback`` for Hugging Face ``transformers.Trainer``
(``pip install 'loopwise[transformers]'``): the run record, loopwise's bar, the system sampler,
health findings and exporters.

```python
from loopwise.transformers import LoopwiseCallback

trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val)
LoopwiseCallback(name="bert-tiny").attach(trainer)   # in place of HF's bar
trainer.train()                                       # or train(resume_from_checkpoint=True)
```

What ``Trainer.log`` reports (every ``logging_steps``) is recorded at the global step under the
record's names (``docs/record.md``): ``loss``, ``grad_norm``, ``learning_rate`` as ``lr``; an
evaluation at an epoch's end (``eval_strategy="epoch"``) as ``epoch/val_<name>`` (``eval_loss``
-> ``epoch/val_loss``), one in mid-epoch as ``val_<name>``; at each epoch's end ``epoch/loss``
(the mean of the epoch's logged losses), ``epoch/lr`` and ``epoch/seconds``. The
``TrainingArguments`` are the run's config. A checkpoint folder gets ``loopwise.json`` naming
the run, so ``train(resume_from_checkpoint=...)`` continues the same run, every step once.
``attach(trainer)`` also makes an exception in ``trainer.train()`` close the run ``failed``
(Ctrl-C: ``interrupted``) at once; without it, use ``with callback:`` around ``train()`` or let
the run be closed at interpreter exit.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

from loopwise.record.opening import reopen_run
from loopwise.record.recorder import Recorder
from loopwise.record.run import Run
from loopwise.record.status import exit_status
from loopwise.utils.atomic import atomic_write_json
from loopwise.utils.jsonsafe import json_safe
from loopwise.watch.epoch_summary import EpochResult, render_epoch_summary
from loopwise.watch.progress import ProgressBar
from loopwise.watch.system_run import ensure_system_monitor
from loopwise.watch.trainer_steps import (
    TrainerSteps,
    attach_exporters,
    check_options,
    end_trainer_run,
    json_config,
    open_run,
)

try:
    import transformers
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("loopwise.transformers needs Hugging Face transformers: "
                      "pip install 'loopwise[transformers]'") from exc

__all__ = ["RUN_POINTER", "LoopwiseCallback", "split_logs"]

RUN_POINTER = "loopwise.json"  # in a checkpoint folder: the run it belongs to
_TRAIN_END = ("train_runtime", "train_samples_per_second", "train_steps_per_second",
              "total_flos", "train_loss")
_NAMES = {"learning_rate": "lr"}
_TIMINGS = ("runtime", "_per_second")


def split_logs(logs: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float],
                                                 dict[str, float]]:
    """``Trainer.log``'s values -> ``(training values, evaluation values, end-of-training
    summary)`` under the record's names: ``learning_rate`` -> ``lr``, ``eval_x`` -> ``val_x``;
    ``epoch`` and what is no number are left out."""
    train: dict[str, float] = {}
    evaluation: dict[str, float] = {}
    end: dict[str, float] = {}
    for key, value in logs.items():
        if key == "epoch" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if key in _TRAIN_END:
            end[key] = float(value)
        elif key.startswith("eval_"):
            evaluation["val_" + key[5:]] = float(value)
        else:
            train[_NAMES.get(key, key)] = float(value)
    return train, evaluation, end


class LoopwiseCallback(transformers.TrainerCallback):  # type: ignore[misc]
    """A ``TrainerCallback`` recording ``Trainer.train`` into a loopwise run; see the module
    doc. ``run``: the run to write to (never closed by the callback); else one is made under
    ``root``/``name`` when training begins and closed when it ends. ``config`` is added to the
    TrainingArguments in ``config.json``. ``exporters`` mirror the run. ``progress`` draws the
    bar and the epoch summaries on ``file`` (default stderr). ``system``: sample the machine;
    ``health``: run the health detectors; ``flush_interval``: seconds between hand-overs.
    ``nan_inf_filter``: keep HF's ``logging_nan_inf_filter``; by default the callback turns
    it off when training begins (with an event saying so), because it logs a NaN or infinite
    loss as the window's mean of the finite ones, so the record would hold a made-up loss (0.0
    once every step is NaN) and no health finding on it; off, the loss is recorded as it was
    (and HF's per-step ``isnan`` check, a device sync, is skipped). Training is not changed."""

    def __init__(self, *, root: str | os.PathLike[str] = "runs", name: str | None = None,
                 run: Run | None = None, config: Mapping[str, Any] | None = None,
                 exporters: Iterable[Recorder] = (), progress: bool = True,
                 file: TextIO | None = None, system: bool = True, health: bool = True,
                 flush_interval: float = 1.0, nan_inf_filter: bool = False) -> None:
        self._exporters = check_options(run=run, root=root, name=name, config=config,
                                        flush_interval=flush_interval, exporters=exporters)
        for flag, value in (("progress", progress), ("system", system), ("health", health),
                            ("nan_inf_filter", nan_inf_filter)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be True or False, got {value!r}")
        if file is not None and not callable(getattr(file, "write", None)):
            raise TypeError(f"file must be a text stream with write(), got {type(file).__name__}")
        self._given_run, self.run = run, run
        self._root, self._name = root, name
        self._config = json_config(config or {})
        self._progress, self._file = progress, file
        self._system, self._health, self._interval = system, health, float(flush_interval)
        self._nan_inf_filter = nan_inf_filter
        self.steps: TrainerSteps | None = None
        self._bar: ProgressBar | None = None
        self._epoch_start = 0.0
        self._lr: float | None = None
        self._summary: tuple[EpochResult, int] | None = None  # printed with its evaluation

    # -- attaching -----------------------------------------------------------------------------
    def attach(self, trainer: Any) -> LoopwiseCallback:
        """Add this callback to ``trainer`` in place of HF's progress bar and printer, and make
        an exception in ``trainer.train()`` close the run at once (``failed``; Ctrl-C:
        ``interrupted``). Returns the callback."""
        if not isinstance(trainer, transformers.Trainer):
            raise TypeError(f"attach() takes a transformers.Trainer, got "
                            f"{type(trainer).__name__}")
        if self._progress:
            trainer.remove_callback(transformers.trainer_callback.ProgressCallback)
            trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)
        train: Callable[..., Any] = trainer.train

        @functools.wraps(train)
        def train_and_close(*args: Any, **kwargs: Any) -> Any:
            with self:
                return train(*args, **kwargs)

        trainer.train = train_and_close
        return self

    def __enter__(self) -> LoopwiseCallback:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            return
        status, error = exit_status(exc_type, exc, tb)
        self._finish_bar()
        self.close(status, error=error)

    # -- the Trainer's hooks ---------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        step = int(state.global_step)
        previous = _pointer(args, step) if step > 0 else None
        unfiltered = not self._nan_inf_filter and bool(getattr(args, "logging_nan_inf_filter",
                                                                False))
        if unfiltered:  # a NaN loss is logged as NaN, not as the window's finite mean
            args.logging_nan_inf_filter = False
        config = {**json_config(args.to_dict()), **_model_config(kwargs.get("model")),
                  **self._config}
        run = self.run
        if run is None or run.closed:
            if self._given_run is not None:
                raise ValueError(f"run {self._given_run.name!r} is closed; pass an open run")
            run = self.run = open_run(previous=previous, root=self._root, name=self._name,
                                      config=config, resuming=step > 0)
        else:
            run.set_config({**_read_config(run), **config})
        attach_exporters(run, self._exporters)
        steps = self.steps = TrainerSteps(run, health=self._health, interval=self._interval)
        steps.start_at(step, epoch=int(state.epoch or 0) if step > 0 else run.epoch)
        if unfiltered:
            run.log_event("note", "logging_nan_inf_filter turned off: a NaN or infinite loss "
                          "is recorded as it was (LoopwiseCallback(nan_inf_filter=True) "
                          "keeps HF's filter)")
        if step > 0:
            run.log_event("checkpoint_loaded", f"resumed at step {step}",
                          data={"step": step, "epoch": float(state.epoch or 0)})
        if self._system:
            ensure_system_monitor(run, loop_stats=steps)
        if self._progress and state.max_steps and state.max_steps > 0:
            self._bar = ProgressBar("Training", int(state.max_steps), file=self._file)
            self._bar.update(step)

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._print_summary()
        self._epoch_start = time.monotonic()
        if self.steps is not None:
            self.steps.reset_means()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        steps = self.steps
        if steps is None:
            return
        step = int(state.global_step)
        steps.add(step, {})  # the step's wall time; its values come with the next log
        if self._bar is not None:
            self._bar.update(step)

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
               **kwargs: Any) -> None:
        steps, run = self.steps, self._live_run()
        if steps is None or run is None or not logs:
            return
        step = int(state.global_step)
        train, evaluation, end = split_logs(logs)
        if train:
            self._lr = train.get("lr", self._lr)
            steps.add(step, train)
            if self._bar is not None:
                self._bar.update(step, {k: v for k, v in train.items() if k != "lr"})
        if evaluation:
            steps.flush()
            epoch = float(state.epoch or 0)
            if epoch > 0 and math.isclose(epoch, round(epoch), abs_tol=1e-6):
                run.log_epoch(round(epoch), evaluation, step=step)
                if steps.health is not None:
                    steps.health.observe_epoch(round(epoch), evaluation)
                self._print_summary({k[4:]: v for k, v in evaluation.items()})
            else:
                run.log_scalars(evaluation, step=step)
        if end:
            run.log_event("train_end", ", ".join(f"{k}={v:g}" for k, v in end.items()),
                          data=json_safe({**end, "step": step}))  # a NaN train_loss: null

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        steps, run = self.steps, self.run
        if steps is None or run is None or run.closed:
            return
        step = int(state.global_step)
        epoch = max(1, round(float(state.epoch or 0)))
        train = {k: v for k, v in steps.means().items() if k != "lr"}
        values = {**train, "seconds": time.monotonic() - self._epoch_start}
        if self._lr is not None:
            values["lr"] = self._lr
        run.log_epoch(epoch, values, step=step)
        if steps.health is not None and train:
            steps.health.observe_epoch(epoch, {f"train_{k}": v for k, v in train.items()})
        epochs = max(epoch, math.ceil(float(args.num_train_epochs)))
        self._summary = (EpochResult(epoch, train, None), epochs)
        if not args.eval_strategy or str(args.eval_strategy).endswith("no"):
            self._print_summary()

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        steps, run = self.steps, self.run
        if steps is None or run is None or run.closed:
            return
        step = int(state.global_step)
        steps.flush()
        run.flush()  # the record holds everything the checkpoint does
        folder = Path(args.output_dir) / f"checkpoint-{step}"
        if folder.is_dir():
            atomic_write_json(folder / RUN_POINTER, {"run": str(run.path), "step": step})
        run.log_event("checkpoint_saved", f"step {step}: {folder.name}",
                      data={"file": str(folder), "step": step,
                            "epoch": float(state.epoch or 0)})

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._finish_bar()
        self._print_summary()
        self.close("finished")

    # -- closing and state -----------------------------------------------------------------------
    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        """Hand over what is pending; close the run the callback made with ``status`` (a given
        run is only flushed)."""
        end_trainer_run(self.run, self.steps, status, error=error,
                        own=self.run is not self._given_run)

    def state_dict(self) -> dict[str, Any]:
        return {"run": None if self.run is None else str(self.run.path),
                "step": 0 if self.steps is None else self.steps.step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "run" not in state:
            raise KeyError("LoopwiseCallback state is missing 'run'")
        if state["run"] is not None and (self.run is None or self.run.closed):
            self.run = reopen_run(state["run"])

    # -- internals -------------------------------------------------------------------------------
    def _live_run(self) -> Run | None:
        """The run to log to; ``trainer.evaluate()`` after training reopens it."""
        run = self.run
        if run is not None and run.closed and run is not self._given_run:
            run = self.run = reopen_run(run.path)
            self.steps = TrainerSteps(run, health=self._health, interval=self._interval)
        return run

    def _print_summary(self, val: Mapping[str, float] | None = None) -> None:
        pending, self._summary = self._summary, None
        if pending is None:
            return
        result, epochs = pending
        if val:  # the evaluation's loss and metrics, not its timings
            val = {k: v for k, v in val.items() if not k.endswith(_TIMINGS)}
            result = EpochResult(result.epoch, result.train, dict(val))
        text = render_epoch_summary(result, epochs)
        if self.run is not None and not self.run.closed:
            self.run.log_event("epoch_end", text.replace("\n", "; "),
                               data={"epoch": result.epoch, "step": self.run.global_step})
        if self._progress:
            tqdm.write("\n" + text + "\n", file=self._file or sys.stderr)

    def _finish_bar(self) -> None:
        if self._bar is not None:
            self._bar.finish()
            self._bar = None


def _pointer(args: Any, step: int) -> str | None:
    """The run named in the checkpoint folder of ``step`` (``loopwise.json``), if any."""
    path = Path(args.output_dir) / f"checkpoint-{step}" / RUN_POINTER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    run = data.get("run") if isinstance(data, dict) else None
    return run if isinstance(run, str) else None


def _read_config(run: Run) -> dict[str, Any]:
    from loopwise.record.reader import RunReader

    return RunReader(run.path).config()


def _model_config(model: Any) -> dict[str, Any]:
    if model is None:
        return {}
    params = sum(p.numel() for p in model.parameters())
    return {"model": type(model).__name__, "total_params": int(params)}
