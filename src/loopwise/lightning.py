"""``loopwise.lightning``: the PyTorch Lightning logger and callback
(``pip install 'loopwise[lightning]'``); see :mod:`loopwise.integrations.lightning`,
:mod:`loopwise.integrations.lightning_callback` and ``docs/integrations.md``."""

from loopwise.integrations.lightning import LoopwiseLogger
from loopwise.integrations.lightning_callback import LoopwiseCallback

__all__ = ["LoopwiseCallback", "LoopwiseLogger"]
