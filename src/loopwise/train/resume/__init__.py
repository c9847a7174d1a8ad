"""One resume method for fit and Workflow: ``rerun`` decides new / resume / already finished /
refuse (with the differences); ``skip`` skips a mid-epoch's done batches in the sampler (no batch
is read to be thrown away); ``sampler`` (``ResumableSampler``, ``ResumableLoader``, the loop
position); ``rng`` (capture and restore every random generator)."""
