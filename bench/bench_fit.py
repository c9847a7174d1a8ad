"""Per-step overhead of ``loopwise.fit`` over a plain PyTorch loop on a tiny model.

Both loops train the same kind of tiny MLP (32 -> 64 -> 1, MSE, AdamW) on the same kind of
DataLoader (3,200 rows, batch 64, shuffled: 50 steps per epoch) in this process. The plain
loop is what one writes by hand: zero_grad, forward, loss, backward, step, and ``loss.item()``
summed for the epoch loss. fit runs with no validation, no plots, no display output, no periodic
checkpoints and no early stopping; everything else it does per step stays on: the run record
(every step's loss), the non-finite guard, the loop timings for the system sampler, the
TrainingSession bookkeeping.

Pairing: a callback times each fit epoch's steps, from the epoch's first hook
(``on_epoch_begin``) to ``on_evaluate`` (after the last step: the steps, the record, the bars,
the loop timings), and, outside that window, runs and times one epoch of the plain loop
(before the fit epoch on odd epochs, after it on even ones). Each fit epoch thus has a plain
epoch next to it under the same machine load (this machine is shared; wall time swings by 2x
with the other processes). Times are the training
thread's CPU time (``time.thread_time``). The overhead is the median over pairs of
fit/plain - 1; the minimum epochs are shown too.

The end of each epoch (epoch record, saving the best weights when they improved, the summary
line: ``on_evaluate`` to ``on_epoch_end``) is a per-epoch cost, reported apart in ms; here no
validation loader, so the training loss improves and the best weights are saved every epoch.

Background threads are reported apart, as CPU time per step outside the training thread
(``time.process_time`` - ``time.thread_time`` over the whole fit call, divided by its steps):
the run record's writer and, in the ``system`` variant, the system sampler (2 s interval).

Variants: ``plain`` (no clipping either side), ``clip`` (clipping at 1.0 on both sides; fit also
records the gradient norm), ``system`` (as ``plain`` with fit's system sampler on).

Run: ``python bench/bench_fit.py [--epochs 60]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from loopwise.train.callbacks import Callback, LoopState
from loopwise.train.fit.config import TrainingConfig
from loopwise.train.fit.entry import fit

ROWS, FEATURES, BATCH = 3_200, 32, 64
STEPS = ROWS // BATCH


def make(seed: int) -> tuple[torch.nn.Module, DataLoader[Any]]:
    torch.manual_seed(seed)
    x = torch.randn(ROWS, FEATURES)
    y = x[:, :4].sum(dim=1, keepdim=True)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 1))
    return model, loader


class PlainLoop:
    """The hand-written loop, one epoch per call, on its own model and loader."""

    def __init__(self, clip: bool) -> None:
        self.model, self.loader = make(seed=1)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.loss_fn = torch.nn.MSELoss()
        self.clip = clip

    def epoch(self) -> float:
        start = time.thread_time()
        total = 0.0
        for x, y in self.loader:
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(x), y)
            loss.backward()
            if self.clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            total += loss.item()
        return time.thread_time() - start


class Paired(Callback):
    """Times each fit epoch and runs one plain epoch outside the timed window, before the fit
    epoch on odd epochs and after it on even ones (so that order effects cancel)."""

    def __init__(self, plain: PlainLoop) -> None:
        self.plain = plain
        self.fit_s: list[float] = []
        self.plain_s: list[float] = []
        self.background_s = 0.0
        self.tail_s: list[float] = []
        self._start = 0.0
        self._steps_done = 0.0

    def on_epoch_begin(self, state: LoopState) -> None:
        if state.epoch % 2:
            self.plain_s.append(self.plain.epoch())
        self._start = time.thread_time()

    def on_evaluate(self, state: LoopState) -> None:  # the epoch's steps are done
        thread = time.thread_time()
        self.fit_s.append(thread - self._start)
        self._steps_done = thread

    def on_epoch_end(self, state: LoopState) -> None:  # after the best-weights save etc.
        self.tail_s.append(time.thread_time() - self._steps_done)
        if not state.epoch % 2:
            self.plain_s.append(self.plain.epoch())


def run(epochs: int, clip: bool, system: bool, root: str) -> Paired:
    model, loader = make(seed=0)
    pair = Paired(PlainLoop(clip))
    cfg = TrainingConfig(epochs=epochs, batch_size=BATCH, patience=0, lr_patience=0,
                         grad_clip=1.0 if clip else None, checkpoint_every=0, device="cpu")
    thread, process = time.thread_time(), time.process_time()
    fit(model, loader, loss_fn=torch.nn.MSELoss(), config=cfg, root=root, callbacks=[pair],
        plots=False, progress=False, system=system)
    pair.background_s = (time.process_time() - process) - (time.thread_time() - thread)
    return pair


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    variants = {"plain": (False, False), "clip": (True, False), "system": (False, True)}
    print(f"tiny MLP (32-64-1), batch {BATCH}, {STEPS} steps/epoch, {args.epochs} paired epochs "
          "per variant (first two dropped), torch threads 1, training-thread CPU time")
    print(f"{'variant':<8} {'plain us/step':>14} {'fit us/step':>12} {'overhead':>9} "
          f"{'(min/min)':>9} {'background us/step':>19} {'epoch end ms':>13}")
    with tempfile.TemporaryDirectory() as root:
        run(2, False, False, root)  # warm-up: imports, allocator, caches
        for name, (clip, system) in variants.items():
            pair = run(args.epochs, clip, system, root)
            fit_s, plain_s = pair.fit_s[2:], pair.plain_s[2:]
            ratio = statistics.median(f / p for f, p in zip(fit_s, plain_s, strict=True))
            us = 1e6 / STEPS
            print(f"{name:<8} {statistics.median(plain_s) * us:14.1f} "
                  f"{statistics.median(fit_s) * us:12.1f} {(ratio - 1) * 100:8.1f}% "
                  f"{(min(fit_s) / min(plain_s) - 1) * 100:8.1f}% "
                  f"{pair.background_s / (STEPS * args.epochs) * 1e6:19.1f} "
                  f"{statistics.median(pair.tail_s[2:]) * 1e3:13.2f}")


if __name__ == "__main__":
    main()
