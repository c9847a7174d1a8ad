"""``fit``: the ready supervised loop (seed 003's ``train_model`` engine).

``entry`` (``fit`` itself), ``config`` (``TrainingConfig``), ``loop`` (the epoch loop), ``files``
(the reference's file names), ``result``, ``runplan`` (new / resume / skip), ``data`` and
``prep`` (loading and preparing data files), ``predict``, ``evaluate``, ``interrupt`` (Ctrl-C),
``logsetup`` and ``cli`` (``loopwise fit``).

The package imports nothing itself, so the CLI's parser (``cli``) imports no torch until the
``fit`` verb runs; ``fit`` is :func:`loopwise.fit` (:mod:`loopwise.train.fit.entry`).
"""
