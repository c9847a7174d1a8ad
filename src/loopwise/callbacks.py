"""``loopwise.callbacks``: the callbacks of ``loopwise.train.callbacks`` under a short name."""

from loopwise.train.callbacks import (
    Callback,
    CallbackList,
    EarlyStopping,
    LearningRateMonitor,
    LoopState,
    ReduceLROnPlateau,
    StopRequest,
    TrendWatcher,
    WeightHistograms,
)

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
