"""``from loopwise.train.resume.sampler import ResumableSampler`` (the path users write, see
``docs/workflow.md``): the sampler lives in :mod:`loopwise.distributed.sampler`."""

from loopwise.distributed.loader import ResumableLoader
from loopwise.distributed.sampler import ResumableSampler

__all__ = ["ResumableLoader", "ResumableSampler"]
