"""``loopwise.keras``: the Keras 3 callback (``pip install 'loopwise[keras]'``); see
:mod:`loopwise.keras.callback` and ``docs/keras.md``."""

from loopwise.keras.callback import LoopwiseCallback

__all__ = ["LoopwiseCallback"]
