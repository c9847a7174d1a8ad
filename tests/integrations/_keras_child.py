"""Child process of test_keras.py: trains a small Keras model on load_digits with the
loopwise callback under the backend in KERAS_BACKEND, and writes what the test checks as JSON.

Usage: python _keras_child.py MODE WORKDIR   (MODE: full, kill, resume, verbose)
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
from _trainer_child_common import ListRecorder
from sklearn.datasets import load_digits

from loopwise.keras import LoopwiseCallback

EPOCHS = 4
BATCH = 50  # 1500 training samples: 30 equal batches per epoch


class KillAfter(keras.callbacks.Callback):
    """SIGKILL this process at the end of epoch ``n`` (after the checkpoint callback ran)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch + 1 == self.n:
            os.kill(os.getpid(), signal.SIGKILL)


def model() -> keras.Model:
    net = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(10),
    ])
    net.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    return net


def main() -> None:
    mode, work = sys.argv[1], Path(sys.argv[2])
    keras.utils.set_random_seed(1234)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    net = model()
    exporter = ListRecorder()
    callback = LoopwiseCallback(root=work / "runs", name=f"digits-{mode}",
                                checkpoint_dir=work / f"ckpt-{mode}", resume=mode == "resume",
                                exporters=[exporter], config={"batch_size": BATCH},
                                flush_interval=0.05, system=True)
    if mode == "resume":
        callback = LoopwiseCallback(root=work / "runs", checkpoint_dir=work / "ckpt-kill",
                                    resume=True, exporters=[exporter], flush_interval=0.05)
    extra = [KillAfter(2)] if mode == "kill" else []
    net.fit(x[:1500], y[:1500], batch_size=BATCH, epochs=EPOCHS, shuffle=True,
            validation_data=(x[1500:], y[1500:]), verbose=1 if mode == "verbose" else 0,
            callbacks=[callback, *extra])
    np.savez(work / f"weights-{mode}.npz", *[np.asarray(v) for v in net.get_weights()])
    out = {"run": str(callback.run.path), "keys": sorted(exporter.keys),
           "events": exporter.events, "config": exporter.config, "closed": exporter.closed,
           "initial_epoch": callback.initial_epoch, "backend": keras.config.backend()}
    (work / f"result-{mode}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
