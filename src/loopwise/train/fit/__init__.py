"""``fit``: the ready supervised loop (seed 003's ``train_model`` engine).

``entry`` (``fit`` itself), ``config`` (``TrainingConfig``), ``loop`` (the epoch loop), ``files``
(the reference's file names), ``result``, ``runplan`` (new / resume / skip), ``data`` and
``prep`` (loading and preparing data files), ``predict``, ``evaluate``, ``interrupt`` (Ctrl-C),
``logsetup`` and ``cli`` (``loopwise fit``).
"""

from loopwise.train.fit.entry import FitResult, fit, resolve_device

__all__ = ["FitResult", "fit", "resolve_device"]
