"""Per-step cost of LoopwiseCallback on Keras 3 ``model.fit``, against ``fit`` with Keras's own
progress bar (``verbose=1``) and against ``fit(verbose=0)`` with no callback; one process,
the variants interleaved round by round, wall time, best of the rounds.

Variants (the same small MLP on random data, batch 32, 2 epochs of ``--steps`` steps):
- ``verbose=0``: no bar, no callback (the baseline);
- ``verbose=0 inline``: the same with a do-nothing batch hook that is not async-safe, so Keras
  calls the batch hooks on the training thread instead of its thread pool;
- ``verbose=1``: Keras's progress bar (to a text buffer, as in a log file);
- ``loopwise``: ``verbose=0`` + ``LoopwiseCallback`` with its defaults (bar to a text buffer,
  run record, system sampler, health monitor; no checkpoints);
- ``loopwise inline``: the same with ``async_safe=False``;
- ``loopwise+ckpt``: ``loopwise``, checkpointing every epoch.

Second table: the cost of one batch hook alone (``on_train_batch_end`` called directly N times
in one epoch with a dict of two floats, as Keras hands it): LoopwiseCallback (bar to a text
buffer, run record, hand-overs every second included) against Keras's ``ProgbarLogger`` (the
``verbose=1`` bar, to a text buffer) and a do-nothing hook; interleaved, best of the rounds.

Run: KERAS_BACKEND=torch .venv/bin/python bench/bench_keras.py [--steps 300] [--rounds 5]
(the backend is chosen before Keras is imported; one backend per process).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from loopwise.keras import LoopwiseCallback

BATCH = 32


class Inline(keras.callbacks.Callback):
    """A batch hook that does nothing and is not async-safe: Keras then calls every batch hook
    on the training thread (what verbose=1's progress bar does too)."""

    def on_train_batch_end(self, batch: int, logs: object = None) -> None:
        pass


def make_model() -> keras.Model:
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hooks-only", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.steps * BATCH, 64), dtype=np.float32)
    y = rng.integers(0, 10, size=args.steps * BATCH).astype("int32")
    root = tempfile.mkdtemp(prefix="bench-keras-")
    probe = make_model()
    probe.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, epochs=1, verbose=0)
    hook_costs(probe, root)
    if args.hooks_only:
        return
    names = ("verbose=0", "verbose=0 inline", "verbose=1", "loopwise", "loopwise inline",
             "loopwise+ckpt")
    models = {name: make_model() for name in names}

    def fit(name: str, verbose: int, callbacks: Callable[[], list[keras.callbacks.Callback]]
            ) -> float:
        sink = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sink):
            models[name].fit(x, y, batch_size=BATCH, epochs=2, verbose=verbose,
                             callbacks=callbacks(), shuffle=True)
        return time.perf_counter() - t0

    counter = iter(range(10**6))
    variants: dict[str, Callable[[], float]] = {
        "verbose=0": lambda: fit("verbose=0", 0, list),
        "verbose=0 inline": lambda: fit("verbose=0 inline", 0, lambda: [Inline()]),
        "verbose=1": lambda: fit("verbose=1", 1, list),
        "loopwise": lambda: fit("loopwise", 0, lambda: [LoopwiseCallback(
            root=root, file=io.StringIO())]),
        "loopwise inline": lambda: fit("loopwise inline", 0, lambda: [LoopwiseCallback(
            root=root, file=io.StringIO(), async_safe=False)]),
        "loopwise+ckpt": lambda: fit("loopwise+ckpt", 0, lambda: [LoopwiseCallback(
            root=root, file=io.StringIO(), checkpoint_dir=f"{root}/ckpt{next(counter)}")]),
    }
    for run in variants.values():  # warm-up: compile, first-call costs
        run()
    best = dict.fromkeys(variants, float("inf"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.rounds):
            for name, run in variants.items():
                best[name] = min(best[name], run())
    steps = 2 * args.steps
    base = best["verbose=0"]
    print(f"Keras {keras.__version__}, backend {keras.config.backend()}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{steps} steps per fit, best of {args.rounds}")
    print(f"{'variant':<16}{'us/step':>10}{'vs verbose=0':>16}{'vs verbose=1':>16}")
    for name, seconds in best.items():
        extra = (seconds - base) / steps * 1e6
        print(f"{name:<16}{seconds / steps * 1e6:>10.1f}{seconds / base:>15.3f}x"
              f"{seconds / best['verbose=1']:>15.3f}x   (+{extra:.1f} us/step over verbose=0)")


def hook_costs(model: keras.Model, root: str, *, n: int = 20000, rounds: int = 5) -> None:
    logs = {"accuracy": 0.5, "loss": 1.25}

    def drive(callback: keras.callbacks.Callback) -> float:
        callback.set_model(model)
        callback.set_params({"verbose": 1, "epochs": 1, "steps": n})
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            callback.on_train_begin()
            callback.on_epoch_begin(0)
            hook = callback.on_train_batch_end
            t0 = time.perf_counter()
            for i in range(n):
                hook(i, logs)
            seconds = time.perf_counter() - t0
            callback.on_epoch_end(0, logs)
            callback.on_train_end()
        return seconds

    makers: dict[str, Callable[[], keras.callbacks.Callback]] = {
        "no-op hook": Inline,
        "Keras ProgbarLogger (verbose=1)": keras.callbacks.ProgbarLogger,
        "LoopwiseCallback": lambda: LoopwiseCallback(root=root, file=io.StringIO(),
                                                     system=False),
    }
    best = dict.fromkeys(makers, float("inf"))
    for _ in range(rounds):
        for name, make in makers.items():
            best[name] = min(best[name], drive(make()))
    print(f"\none batch hook, {n} calls, best of {rounds}")
    for name, seconds in best.items():
        print(f"{name:<34}{seconds / n * 1e9:>10.0f} ns/call"
              f"{seconds / best['Keras ProgbarLogger (verbose=1)']:>10.2f}x ProgbarLogger")


if __name__ == "__main__":
    main()
