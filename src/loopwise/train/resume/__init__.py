"""One resume method for fit and Workflow: ``rerun`` decides new / resume / already finished /
refuse (with the differences); ``restore`` puts a component's state back. The sampler, the skip
of a mid-epoch's done batches and the RNG capture are in :mod:`loopwise.distributed`
(``sampler``, ``skip``, ``rng``)."""
