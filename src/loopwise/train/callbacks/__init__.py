"""Callbacks for Workflow and fit: hooks, state that survives resume, one stop signal."""

from loopwise.train.callbacks.base import (
    Callback,
    CallbackList,
    LoopState,
    StopRequest,
)
from loopwise.train.callbacks.early_stopping import EarlyStopping
from loopwise.train.callbacks.histograms import WeightHistograms
from loopwise.train.callbacks.lr_monitor import LearningRateMonitor
from loopwise.train.callbacks.reduce_lr import ReduceLROnPlateau
from loopwise.train.callbacks.trend_watcher import TrendWatcher

__all__ = [
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "LearningRateMonitor",
    "LoopState",
    "ReduceLROnPlateau",
    "StopRequest",
    "TrendWatcher",
    "WeightHistograms",
]
