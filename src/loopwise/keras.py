"""``loopwise.keras``: the Keras 3 callback (``pip install 'loopwise[keras]'``); see
:mod:`loopwise.integrations.keras` and ``docs/keras.md``."""

from loopwise.integrations.keras import LoopwiseCallback

__all__ = ["LoopwiseCallback"]
