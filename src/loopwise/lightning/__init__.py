"""``loopwise.lightning``: the PyTorch Lightning logger and callback
(``pip install 'loopwise[lightning]'``); see :mod:`loopwise.lightning.logger`,
:mod:`loopwise.lightning.callback` and ``docs/integrations.md``."""

from loopwise.lightning.callback import LoopwiseCallback
from loopwise.lightning.logger import LoopwiseLogger

__all__ = ["LoopwiseCallback", "LoopwiseLogger"]
