"""``loopwise.fit``: the ready supervised training loop.

```python
from loopwise import fit, TrainingConfig

result = fit(model, train_loader, loss_fn=torch.nn.CrossEntropyLoss(), val_loader=val_loader,
             config=TrainingConfig(epochs=20, use_mixed_precision=True), name="mnist-mlp")
result.best_epoch, result.val_losses, result.files["best_model"]
```

Built on the record (a run folder), :class:`~loopwise.watch.session.TrainingSession` (bars,
epoch summaries, per-step and per-epoch series), the
:class:`~loopwise.checkpoint.manager.CheckpointManager` and the callbacks, adding AMP, gradient
clipping with the gradient norm recorded, the non-finite loss guard, out-of-memory recovery,
graceful Ctrl-C, best and periodic checkpoints and the reference's files
(:mod:`loopwise.train.fit.files`). Batches are ``(inputs, targets)`` (or ``(in1, ..., targets)``)
and ``loss_fn(model(*inputs), targets)`` must be a mean over the batch.

Runs: with ``run=None`` fit makes ``<root>/<name>`` (a generated name when None: always a new
run). With a given ``name`` a second call with the same parameters returns the saved result
(``status="skipped"``) or resumes an interrupted run from its latest checkpoint; different
parameters are an error; ``force=True`` starts again. A given ``run`` is used as it is and never
closed by fit (its owner closes it; fit records what happened as events).

The returned model holds the best weights (lowest ``val_loss``, or ``loss`` without validation),
and the test loss is computed with them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from loopwise.checkpoint.distributed import check_world_size
from loopwise.distributed import rng
from loopwise.distributed.group import train_group
from loopwise.record import Run
from loopwise.record.opening import end_run
from loopwise.record.recorder import Recorder
from loopwise.record.status import exit_status
from loopwise.train.callbacks import (
    Callback,
    CallbackList,
    EarlyStopping,
    ReduceLROnPlateau,
    WeightHistograms,
)
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.files import FitFiles
from loopwise.train.fit.logsetup import close_logging, setup_logging
from loopwise.train.fit.loop import FitLoop
from loopwise.train.fit.ranks import choose_run, distribute, quiet_logger
from loopwise.train.fit.result import FitResult, finish_fit, saved_result
from loopwise.train.interrupt import GracefulInterrupt, HeldInterrupt
from loopwise.train.resume.rerun import differences
from loopwise.utils.console import null_console
from loopwise.utils.validate import check_bool
from loopwise.watch.system_run import ensure_system_monitor, start_rank_system, system_option

__all__ = ["FitResult", "fit", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; an unavailable device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available here; "
                         "use device='cpu' or 'auto'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for but MPS is not available; use 'cpu'")
    return device


def _length(loader: Any, what: str, *, allow_empty: bool = False) -> int:
    try:
        n = len(loader)
    except TypeError:
        raise TypeError(f"{what} needs a len() (a DataLoader over a map-style dataset, or an "
                        f"IterableDataset with __len__); got {type(loader).__name__}") from None
    if n == 0 and not allow_empty:
        raise ValueError(f"{what} is empty (len 0): give it at least one batch")
    return int(n)


def _check(model: Any, train_loader: Any, loss_fn: Any, optimizer: Any, config: Any,
           run: Any, name: Any, force: Any, metadata: Any) -> TrainingConfig:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(outputs, targets), got "
                        f"{type(loss_fn).__name__}; e.g. torch.nn.MSELoss()")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got "
                        f"{type(optimizer).__name__}")
    if config is not None and not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a loopwise.TrainingConfig or None, got "
                        f"{type(config).__name__}")
    if run is not None and not isinstance(run, Run):
        raise TypeError(f"run must be a loopwise Run or None, got {type(run).__name__}")
    if run is not None and run.closed:
        raise ValueError(f"run {run.name!r} is closed; pass an open run (or none)")
    if run is not None and (name is not None or force):
        raise ValueError("name= and force= choose the run fit makes; with run= given, leave "
                         "them out")
    check_bool(force, what="force")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict of JSON values, got {type(metadata).__name__}")
    _length(train_loader, "train_loader")
    return config if config is not None else TrainingConfig()


def _callbacks(given: Sequence[Callback] | Callback, cfg: TrainingConfig, monitor: str
               ) -> CallbackList:
    items = [given] if isinstance(given, Callback) else list(given)
    if cfg.patience and not any(isinstance(c, EarlyStopping) for c in items):
        items.append(EarlyStopping(monitor=monitor, patience=cfg.patience))
    if cfg.lr_patience and not any(isinstance(c, ReduceLROnPlateau) for c in items):
        items.append(ReduceLROnPlateau(monitor=monitor, factor=cfg.lr_factor,
                                       patience=cfg.lr_patience, min_lr=cfg.min_lr))
    if cfg.histogram_every and not any(isinstance(c, WeightHistograms) for c in items):
        items.append(WeightHistograms(cfg.histogram_every))
    return CallbackList(items)


def fit(model: torch.nn.Module, train_loader: Iterable[Any], *,
        loss_fn: Callable[..., torch.Tensor], optimizer: torch.optim.Optimizer | None = None,
        val_loader: Iterable[Any] | None = None, test_loader: Iterable[Any] | None = None,
        config: TrainingConfig | None = None, callbacks: Sequence[Callback] | Callback = (),
        run: Run | None = None, root: str | Path = "runs", name: str | None = None,
        force: bool = False, metadata: Mapping[str, Any] | None = None, plots: bool = True,
        progress: bool = True, system: bool | float = True,
        exporters: Sequence[Recorder] = (), report: bool = True,
        allow_reshard: bool = False) -> FitResult:
    """Train ``model``; see the module docstring. ``metadata`` (JSON values, e.g. the data
    file and its normalisation) is saved in the run's ``config.json`` and is part of the
    parameters that decide skip/resume. ``plots`` writes the two PNGs at the end (when
    matplotlib is installed); ``progress=False`` prints nothing; ``system``: True samples the
    system every 2 s (or keeps the sampler already running on a given run), a number is the
    interval in seconds, False starts no sampler; ``exporters`` mirror the run (TensorBoard,
    MLflow, Prometheus); ``report`` writes ``report.html`` in the run folder when fit made the
    run (``loopwise report RUN`` writes one for any run). ``allow_reshard``: under torchrun,
    resume a checkpoint saved under another number of processes (its epoch starts again under
    the new sharding; otherwise that is an error). Under torchrun (``docs/distributed.md``)
    every rank calls fit alike: the model is wrapped in ``DistributedDataParallel``, the
    loaders are split over the ranks, rank 0 records and writes every file (a ``run`` is given
    on rank 0; the other ranks' is not used)."""
    cfg = _check(model, train_loader, loss_fn, optimizer, config, run, name, force, metadata)
    system_option(system)  # a bad value is refused before anything is made
    check_bool(allow_reshard, what="allow_reshard")
    group = train_group()  # under torchrun: rank 0 records, every rank trains its shard
    device = resolve_device(cfg.device)
    trained: torch.nn.Module = model  # what the steps run (DDP under torchrun)
    if group is not None:
        train_loader, val_loader, device, model, trained = distribute(
            group, model, train_loader, val_loader, device, cfg.seed)
    n_val = _length(val_loader, "val_loader") if val_loader is not None else 0
    if test_loader is not None:
        _length(test_loader, "test_loader")
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate,
                                      weight_decay=cfg.weight_decay)
    monitor = "val_loss" if val_loader is not None else "loss"
    cbs = _callbacks(callbacks, cfg, monitor)
    params: dict[str, Any] = {
        **cfg.to_dict(), "model": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "optimizer": type(optimizer).__name__, "loss_fn": type(loss_fn).__name__,
        "callbacks": cbs.names(),
    }
    if metadata:
        params["metadata"] = dict(metadata)
    owns, skipped, run = choose_run(group, run, root, name, params,
                                    model_name=cfg.model_name, force=force)
    if skipped is not None:
        if progress and (group is None or group.leader):
            print(f"loopwise: {skipped} already finished with these parameters; skipped "
                  "(force=True trains again)", file=sys.stderr)
        return saved_result(model, skipped, cfg, device, monitor)
    assert run is not None
    leader = group is None or group.leader
    status, error = "failed", None
    result: FitResult | None = None
    files: FitFiles | None = None
    logger: logging.Logger | None = None
    session: Any = None
    try:
        files = FitFiles(run.path, cfg.model_name, keep=cfg.keep_checkpoints, run=run,
                         group=group)
        logger = (setup_logging(cfg.model_name, log_dir=run.path, console=False) if leader
                  else quiet_logger(cfg.model_name))
        if leader:
            cfg.save(files.config)
        from loopwise.watch.session import TrainingSession

        session = TrainingSession(cfg.model_name, cfg.epochs,
                                  _length(train_loader, "train_loader"), n_val, model=model,
                                  run=run if leader else None,
                                  system=False, exporters=exporters,
                                  file=None if progress else null_console())
        loop = FitLoop(model=model, train_loader=train_loader, val_loader=val_loader,
                       test_loader=test_loader, loss_fn=loss_fn, optimizer=optimizer,
                       config=cfg, callbacks=cbs, run=run, device=device, display=session,
                       logger=logger, files=files, trained=trained, group=group)
        _start(loop, files, cfg, run, device, logger, system, allow_reshard=allow_reshard)
        with GracefulInterrupt() as interrupt:
            loop.run_epochs(interrupt)
        with HeldInterrupt("finished"):  # training is over: a Ctrl-C now changes no status
            session.close("finished")
            result = finish_fit(loop, files, plots=plots and leader)
        status = "finished"
        return result
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException as exc:
        status, error = exit_status(type(exc), exc, exc.__traceback__)
        if group is not None:  # torchrun: every failed rank's traceback, the earliest first
            error = group.on_failure(error)
        if logger is not None:
            logger.error("training failed:\n%s", error)
        raise
    finally:
        with HeldInterrupt(status):  # the close: one status in every file and mirror
            if session is not None:
                with _after(status):
                    session.close(status, error=error)
            if files is not None:
                with _after(status):
                    files.close()
            if logger is not None:
                with _after(status):
                    close_logging(logger)
            if owns:  # the one end of a run: the report written, then closed with its status
                with _after(status):
                    end_run(run, status=status, error=error,
                            before=_report(result) if report and leader else None)
            elif status != "finished" and not run.closed:
                run.log_event(f"fit_{status}", f"fit ended: {status}", level="warning",
                              data={"error": error.splitlines()[-1] if error else None})


def _report(result: FitResult | None) -> Callable[[Path, str | None, str | None], None]:
    """``report.html`` written at the end of a run fit made, finished or not: before the close,
    so that the exporters (MLflow) upload it; it says the status the run closes with."""
    def write(path: Path, status: str | None, error: str | None) -> None:
        from loopwise.view.report import report_at_end

        written = report_at_end(path, ending=None if status is None else {
            "status": status, "end_time": time.time(), "error": error})
        if written is not None and result is not None:
            result.files["report"] = written
    return write


def _after(status: str) -> contextlib.AbstractContextManager[Any]:
    """Clean-up after a failure (a full disk: the record cannot be flushed either) never
    replaces the error that is propagating; after a success its errors are raised."""
    return contextlib.nullcontext() if status == "finished" else contextlib.suppress(Exception)


def _start(loop: FitLoop, files: FitFiles, cfg: TrainingConfig, run: Run,
           device: torch.device, logger: Any, system: bool | float, *,
           allow_reshard: bool) -> None:
    start, interval = system_option(system)
    if start and loop.group is not None:  # under torchrun: every rank samples, rank 0 records
        start_rank_system(loop.group, loop.clock, interval=interval)
    elif start:
        ensure_system_monitor(run, loop_stats=loop.clock, interval=interval)
    state = files.load_latest(device)
    if state is None:
        loop.engine.step = loop.acc.step0  # a run given with steps already: continue them
        rng.seed_everything(cfg.seed)
        logger.info("training %s for %d epochs on %s: %s", cfg.model_name, cfg.epochs, device,
                    cfg.to_dict())
        return
    saved = state.get("config", {})
    if saved != cfg.to_dict():
        raise ValueError(f"the checkpoint in {files.manager.directory} was saved with another "
                         "config:\n  " + "\n  ".join(differences(saved, cfg.to_dict()))
                         + "\nuse the same config or start a new run")
    if check_world_size(int(state.get("world_size", 1)), source=files.manager.directory,
                        allow_reshard=allow_reshard) and state["batch"]:
        # the interrupted epoch starts again under the new sharding, at its first step
        state = {**state, "batch": 0, "partial": None, "epoch_rng": None,
                 "engine": {**state["engine"], "step": state["session"]["global_step"]}}
    loop.load_state_dict(state)
    message = (f"resumed from the checkpoint at step {loop.engine.step} (epoch {loop.epoch}"
               + (f", {loop.resume_batch} batches into the next)" if loop.resume_batch else ")"))
    run.log_event("fit_resumed", message, data={"step": loop.engine.step, "epoch": loop.epoch})
    logger.info(message)
