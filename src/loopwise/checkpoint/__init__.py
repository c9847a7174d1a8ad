"""Checkpoints: one policy over one storage (Ignite's ``Checkpoint`` + ``DiskSaver`` split).

* :class:`~loopwise.checkpoint.manager.CheckpointManager`: what to keep and when (the last
  ``keep_last``, the best ``keep_best`` by a monitored metric, ``mode="auto"``), async saves.
* :mod:`~loopwise.checkpoint.store`: how a file is written and read: atomic (temp + fsync +
  rename, recycling the last dropped file), hashed inline (XXH3-128), verified on every load.
* :mod:`~loopwise.checkpoint.named`: files with fixed names (Workflow's ``last_checkpoint.pth``
  and ``last_weights.pt``, fit's ``<name>_best_model.pth``) through the same storage and the same
  manifest format.
* :mod:`~loopwise.checkpoint.weights`: loading a state dict safely (``weights_only``).

It sits beside ``train/`` so that the Keras callback and the distributed helpers reach it
without climbing into the training loops.
"""

from loopwise.checkpoint.errors import CheckpointError, CorruptCheckpointError
from loopwise.checkpoint.folder import CheckpointCheck, CheckpointInfo
from loopwise.checkpoint.manager import CheckpointManager

__all__ = ["CheckpointCheck", "CheckpointError", "CheckpointInfo", "CheckpointManager",
           "CorruptCheckpointError"]
