"""Orchestration of training loops, one package per concept: ``fit`` (the ready loop),
``workflow`` (seed 002's ``Workflow`` and ``Trainer``), ``step`` (one training step: AMP, OOM,
non-finite guard), ``resume`` (one resume method), ``callbacks``, and ``reference`` (seed 003's
compatibility API: ``train_model`` and its helpers). Checkpoints live in :mod:`loopwise.checkpoint`.
"""
