"""``loopwise.transformers``: the Hugging Face ``Trainer`` callback
(``pip install 'loopwise[transformers]'``); see :mod:`loopwise.transformers.callback` and
``docs/integrations.md``."""

from loopwise.transformers.callback import LoopwiseCallback

__all__ = ["LoopwiseCallback"]
