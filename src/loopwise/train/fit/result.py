"""The end of a fit: best weights back into the model, the test pass, plots, ``results.json``,
and :class:`FitResult`; also the result of a fit that is skipped because it already finished."""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from loopwise.checkpoint.weights import load_into
from loopwise.record.reader import RunReader
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.files import (
    BEST_MODEL,
    CONFIG,
    LOG,
    LOSS_PLOT,
    PREDICTIONS_PLOT,
    RESULTS,
    FitFiles,
    fit_file,
    load_best_model,
)
from loopwise.train.fit.importance import importance_table, permutation_importance
from loopwise.train.fit.loop import FitLoop
from loopwise.train.step.engine import unpack


@dataclass
class FitResult:
    """What a fit produced. ``status``: ``finished``, ``stopped`` (a callback's stop request,
    e.g. early stopping; ``stop_reason`` says why) or ``skipped`` (it had already finished:
    the saved result, with the best weights loaded into the model)."""

    model: torch.nn.Module
    status: str
    run_path: Path
    epochs: int
    train_losses: list[float]
    val_losses: list[float]
    test_loss: float | None
    best_epoch: int | None
    best_value: float | None
    monitor: str
    stop_reason: str | None = None
    test_accuracy: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


def _files(files: FitFiles) -> dict[str, Path]:
    named = {"run": files.folder, "best_model": files.best_model, "config": files.config,
             "log": files.log, "loss_plot": files.loss_plot,
             "predictions_plot": files.predictions_plot, "results": files.results}
    return {k: p for k, p in named.items() if p.exists()}


def _output_dim(model: torch.nn.Module, loader: Any, device: torch.device) -> int:
    from loopwise.train.fit.predict import extract_final_predictions

    inputs, _ = unpack(next(iter(loader)))
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model(*(x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs))
    finally:
        model.train(was)
    probe = out[0] if isinstance(out, (tuple, list)) else out
    dim = int(probe.shape[-1]) if isinstance(probe, torch.Tensor) and probe.dim() > 1 else 1
    extract_final_predictions(out, dim)  # the same reading plot_predictions will do
    return dim


def _plots(loop: FitLoop, files: FitFiles, train: list[float], val: list[float]) -> None:
    """The loss and predictions plots (files, and images in the record), and the permutation
    feature importance of tabular validation data (a text table and a chart in the record)."""
    step = loop.engine.step
    loader = loop.val_loader if loop.val_loader is not None else loop.test_loader
    try:
        from loopwise.train.fit.predict import plot_predictions
        from loopwise.view.plots import plot_losses

        plot_losses(train, val, files.name, path=files.loss_plot)
        loop.run.log_image("losses", files.loss_plot, step=step)
        if loader is not None:
            dim = _output_dim(loop.model, loader, loop.device)
            plot_predictions(loop.model, loader, dim, model_name=files.name,
                             path=files.predictions_plot, device=loop.device)
            loop.run.log_image("predictions", files.predictions_plot, step=step)
    except ImportError as exc:  # matplotlib is an optional extra
        loop.run.log_event("plots_skipped", str(exc))
        loop.log.info("plots skipped: %s", exc)
    if loader is not None:
        _importance(loop, files, loader, step)


def _importance(loop: FitLoop, files: FitFiles, loader: Any, step: int) -> None:
    names = RunReader(files.folder).config().get("features")
    found = permutation_importance(
        loop.model, loader, loop.loss_fn, device=loop.device,
        names=names if isinstance(names, list) and all(isinstance(n, str) for n in names)
        else None)
    if not found:
        return
    loop.run.log_text("feature_importance", importance_table(found), step=step)
    if importlib.util.find_spec("matplotlib") is not None:  # the chart needs the extra
        from loopwise.view.plots import render_importance

        loop.run.log_image("feature_importance", render_importance(
            [i.feature for i in found], [i.mean for i in found], [i.std for i in found],
            files.name), step=step)


def finish_fit(loop: FitLoop, files: FitFiles, *, plots: bool) -> FitResult:
    """Wrap up a completed loop (see the module docstring) and return its result."""
    model, run = loop.model, loop.run
    best = files.load_best(loop.device)
    if best is not None:
        load_into(model, best, strict=True, source=str(files.best_model))
    test = loop.evaluate_test()
    if test is not None:
        run.log_scalars({f"test/{k}": v for k, v in test.items()}, step=loop.engine.step)
        shown = ", ".join(f"{k} {v:.6g}" for k, v in test.items())
        run.log_event("test", f"test set (best weights): {shown}", data=dict(test))
        loop.log.info("test set (best weights): %s", shown)
    train = [h["loss"] for h in loop.history]
    val = [h["val_loss"] for h in loop.history] if loop.val_loader is not None else []
    if plots and train:
        _plots(loop, files, train, val)
    stop = loop.stop
    result = FitResult(
        model=model, status="stopped" if stop is not None else "finished",
        run_path=files.folder, epochs=loop.epoch, train_losses=train, val_losses=val,
        test_loss=test["loss"] if test else None,
        test_accuracy=test.get("accuracy") if test else None,
        best_epoch=loop.best.best_step, best_value=loop.best.best, monitor=loop.monitor,
        stop_reason=stop.reason if stop is not None else None, history=loop.history)
    files.write_results({
        "status": result.status, "epochs": result.epochs, "monitor": result.monitor,
        "best_epoch": result.best_epoch, "best_value": result.best_value,
        "test_loss": result.test_loss, "test_accuracy": result.test_accuracy,
        "stop_reason": result.stop_reason, "train_losses": train, "val_losses": val,
        "skipped_steps": loop.engine.skipped, "nonfinite_losses": loop.engine.guard.total,
        "history": loop.history,
    })
    loop.log.info("training %s after %d epochs; best %s %s at epoch %s", result.status,
                  result.epochs, result.monitor, result.best_value, result.best_epoch)
    result.files = _files(files)
    return result


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def saved_result(model: torch.nn.Module, folder: Path, cfg: TrainingConfig,
                 device: torch.device, monitor: str) -> FitResult:
    """The result of a finished run in ``folder``, its best weights loaded into ``model``."""
    files_path = fit_file(folder, cfg.model_name, RESULTS)
    try:
        data = json.loads(files_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{files_path}: line {exc.lineno}: corrupt ({exc.msg}); pass "
                         "force=True to train again") from None
    best = fit_file(folder, cfg.model_name, BEST_MODEL)
    weights = load_best_model(best, device)  # verified against the manifest
    if weights is not None:
        load_into(model, weights, strict=True, source=str(best))
    history = [{k: _num(v) for k, v in h.items()} for h in data.get("history", [])]
    test = data.get("test_loss")
    named = {"run": folder, "best_model": best}
    for key, suffix in (("config", CONFIG), ("log", LOG), ("loss_plot", LOSS_PLOT),
                        ("predictions_plot", PREDICTIONS_PLOT), ("results", RESULTS)):
        named[key] = fit_file(folder, cfg.model_name, suffix)
    best_value = data.get("best_value")
    return FitResult(
        model=model, status="skipped", run_path=folder, epochs=int(data.get("epochs", 0)),
        train_losses=[_num(v) for v in data.get("train_losses", [])],
        val_losses=[_num(v) for v in data.get("val_losses", [])],
        test_loss=None if test is None else float(test), best_epoch=data.get("best_epoch"),
        best_value=None if best_value is None or not math.isfinite(best_value) else best_value,
        monitor=str(data.get("monitor", monitor)), stop_reason=data.get("stop_reason"),
        test_accuracy=data.get("test_accuracy"), history=history,
        files={k: p for k, p in named.items() if p.exists()})
