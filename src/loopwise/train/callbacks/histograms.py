"""Weight and gradient histograms every N epochs, recorded in the run (``histogram_every`` of
``fit``/``TrainingConfig`` and ``Workflow``).

At the end of every ``every``-th epoch, on the training thread, each parameter of the model is
recorded as ``weights/<param>`` and its gradient (the last step's, when the optimizer left it)
as ``grads/<param>``, at the global step where the epoch ended. The caller starts one
asynchronous device-to-host copy per tensor and goes on: binning runs on the run's media thread
(:func:`loopwise.watch.hostcopy.model_histograms`), so an epoch end never waits for the device.
"""

from __future__ import annotations

from loopwise.train.callbacks.base import Callback, LoopState
from loopwise.utils.validate import check_int
from loopwise.watch.hostcopy import model_histograms


def check_every(every: object, *, what: str = "histogram_every") -> int:
    return check_int(every, what=what, hint="epochs between weight and gradient histograms; "
                     "0 turns them off")


class WeightHistograms(Callback):
    """Record the model's weight and gradient histograms at the end of every ``every``-th
    epoch (``every >= 1``)."""

    def __init__(self, every: int = 1) -> None:
        if check_every(every) < 1:
            raise ValueError(f"WeightHistograms needs every >= 1 epochs, got {every!r}")
        self.every = every

    def on_epoch_end(self, state: LoopState) -> None:
        if state.run is None or state.model is None or state.epoch % self.every:
            return
        model_histograms(state.run, state.model, step=int(state.step))
