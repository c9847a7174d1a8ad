"""The distributed plumbing, below ``watch/`` and ``train/``: the process group and its rank-0
decision (``group``), the loop's cross-rank reducer (``reducer``, ``merge``, ``local``,
``failure``), sharding and the resumable sampler (``sampler``, ``skip``) and the capture of every
random generator (``rng``). Importing it imports no torch; torch is imported where it is used."""
