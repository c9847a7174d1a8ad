"""``loopwise.transformers``: the Hugging Face ``Trainer`` callback
(``pip install 'loopwise[transformers]'``); see :mod:`loopwise.integrations.hf` and
``docs/integrations.md``."""

from loopwise.integrations.hf import LoopwiseCallback

__all__ = ["LoopwiseCallback"]
