"""Per-step cost of loopwise's Lightning logger+callback and Hugging Face callback, against
Lightning's CSVLogger with its own bar and HF's ``report_to="none"`` with its own bar.

One process; the variants interleaved round by round (the first one rotating), wall time of
the training steps only: a timing callback reads the clock at the end of the first step and of
every later one (``on_train_batch_end`` / ``on_step_end``), so the time of steps 2..N is
measured and the set-up, the run's creation, the epoch ends' summaries and the teardown are
not (they are per-run or per-epoch costs).
Every bar writes to an in-memory stream (as in a log file). Defaults are what is measured.

Lightning (a tiny MLP 32-64-1 on 3,200 random rows, batch 16: ``--steps`` steps, CPU,
``enable_checkpointing=False``, ``enable_model_summary=False``, ``self.log("train_loss",
loss)`` every step):
- ``CSVLogger + TQDM bar``: Lightning's defaults with ``CSVLogger`` (the baseline);
- ``LoopwiseLogger + LoopwiseCallback``: loopwise's record (every step's loss and
  ``train_loss``), bar, system sampler and health detectors;
- ``logger=False, no bar``: the floor.

Hugging Face (a 2-layer BERT, hidden 32, vocabulary 100, sequences of 16, batch 8, built from
a config, ``max_steps=--hf-steps``, ``use_cpu=True``, ``save_strategy="no"``, logging every
500 steps, the default):
- ``report_to="none"`` with HF's tqdm bar (the baseline);
- ``LoopwiseCallback.attach``: loopwise's record, bar, system sampler, health in place of it.

Run: ``python bench/bench_trainers.py [--steps 400] [--hf-steps 120] [--rounds 5]``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="bench-hf-home-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(__file__))

import logging

import torch

from _timing import Table, arguments, emit, interleaved, rounds_of

BATCH = 16


class HookClock:
    """Training-thread CPU time spent in chosen hooks (``time.thread_time``: less swayed by the
    other processes of a shared machine than wall time), summed per run."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, cls: type, *names: str) -> None:
        for name in names:
            original = getattr(cls, name)

            def timed(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                t0 = time.thread_time()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.seconds += time.thread_time() - t0

            setattr(cls, name, timed)

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def lightning_variants(steps: int, root: str, hooks: HookClock,
                       ) -> dict[str, Callable[[], tuple[float, float]]]:
    import lightning.pytorch as L
    from lightning.pytorch.callbacks import TQDMProgressBar
    from lightning.pytorch.loggers import CSVLogger

    from loopwise.lightning import LoopwiseCallback, LoopwiseLogger

    hooks.wrap(TQDMProgressBar, "on_train_batch_end")
    hooks.wrap(CSVLogger, "log_metrics", "save")
    hooks.wrap(LoopwiseCallback, "on_train_batch_end")
    hooks.wrap(LoopwiseLogger, "log_metrics", "save")

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    class Net(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(),
                                           torch.nn.Linear(64, 1))

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Clock(L.Callback):
        seconds = 0.0

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                               batch_idx: int) -> None:
            if batch_idx == 0:
                self.t0 = time.perf_counter()
            self.seconds = time.perf_counter() - self.t0

    x = torch.randn(steps * BATCH, 32)
    data = torch.utils.data.TensorDataset(x, x[:, :4].sum(dim=1, keepdim=True))
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH)

    def fit(logger: Any, callbacks: list[Any], bar: bool) -> tuple[float, float]:
        clock = Clock()
        hooks.take()
        trainer = L.Trainer(max_epochs=1, logger=logger, callbacks=[clock, *callbacks],
                            enable_progress_bar=bar, enable_checkpointing=False,
                            enable_model_summary=False, accelerator="cpu",
                            default_root_dir=root)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            trainer.fit(Net(), loader)
        return clock.seconds, hooks.take()

    return {
        "CSVLogger + TQDM bar": lambda: fit(CSVLogger(root), [], True),
        "LoopwiseLogger + LoopwiseCallback": lambda: fit(
            LoopwiseLogger(root=root), [LoopwiseCallback(file=io.StringIO())], True),
        "logger=False, no bar": lambda: fit(False, [], False),
    }


def hf_variants(steps: int, root: str, hooks: HookClock,
                ) -> dict[str, Callable[[], tuple[float, float]]]:
    import transformers
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )
    from transformers.trainer_callback import ProgressCallback

    from loopwise.transformers import LoopwiseCallback

    hooks.wrap(ProgressCallback, "on_step_end", "on_log")
    hooks.wrap(LoopwiseCallback, "on_step_end", "on_log")
    transformers.logging.set_verbosity_error()
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=32,
                        num_labels=2)
    ids = torch.randint(0, 100, (steps * 8, 16), generator=torch.Generator().manual_seed(0))

    class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
        def __len__(self) -> int:
            return len(ids)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            return {"input_ids": ids[i], "labels": (ids[i, 0] > 50).long()}

    class Clock(TrainerCallback):  # type: ignore[misc]
        seconds = 0.0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 1:
                self.t0 = time.perf_counter()
            self.seconds = time.perf_counter() - self.t0

    counter = iter(range(10**6))

    def train(loopwise: bool) -> tuple[float, float]:
        torch.manual_seed(0)
        args = TrainingArguments(output_dir=os.path.join(root, f"hf{next(counter)}"),
                                 max_steps=steps, per_device_train_batch_size=8,
                                 save_strategy="no", report_to="none", use_cpu=True,
                                 dataloader_num_workers=0, disable_tqdm=False)
        clock = Clock()
        hooks.take()
        trainer = Trainer(model=BertForSequenceClassification(config), args=args,
                          train_dataset=Tokens(), callbacks=[clock])
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            if loopwise:
                LoopwiseCallback(root=root, file=sink).attach(trainer)
            trainer.train()
        return clock.seconds, hooks.take()

    return {'report_to="none" + HF bar': lambda: train(False),
            "LoopwiseCallback.attach": lambda: train(True)}


def tables_of(key: str, title: str, samples: dict[str, list[tuple[float, float]]],
              steps: int, baseline: str) -> list[Table]:
    """Wall time per step (steps 2..N), and the training thread's CPU time per step in the
    logging and bar hooks (the peers' bar and logger hooks against loopwise's)."""
    wall = Table(key, title + ": wall time per step", "us/step", baseline=baseline)
    hook = Table(key + "_hooks", title + ": CPU time per step in the bar and logger hooks",
                 "us/step", baseline=baseline)
    base = [w for w, _ in samples[baseline]]
    base_hooks = [h for _, h in samples[baseline]]
    for name, pairs in samples.items():
        walls = [w for w, _ in pairs]
        added = sorted((w - b) / steps * 1e6 for w, b in zip(walls, base))
        note = "" if name == baseline else f"{added[len(added) // 2]:+.0f} us/step (median)"
        wall.add(name, [w / steps * 1e6 for w in walls], note=note,
                 baseline=[b / steps * 1e6 for b in base])
        hook.add(name, [h / steps * 1e6 for _, h in pairs],
                 baseline=[h / steps * 1e6 for h in base_hooks])
    return [wall, hook]


def main() -> None:
    parser = arguments(__doc__, rounds=5)
    parser.add_argument("--steps", type=int, default=None, help="Lightning steps (400)")
    parser.add_argument("--hf-steps", type=int, default=None, help="HF steps (120)")
    args = parser.parse_args()
    rounds = rounds_of(args)
    steps = args.steps or (150 if args.quick else 400)
    hf_steps = args.hf_steps or (40 if args.quick else 120)
    torch.set_num_threads(1)
    root = tempfile.mkdtemp(prefix="bench-trainers-")
    tables: list[Table] = []
    hooks = HookClock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        variants = lightning_variants(steps, root, hooks)
        for run in variants.values():  # warm-up
            run()
        tables += tables_of("trainers_lightning", f"Lightning, {steps} steps",
                            interleaved(variants, rounds=rounds), steps - 1,
                            "CSVLogger + TQDM bar")
        hf = hf_variants(hf_steps, root, hooks)
        for run in hf.values():
            run()
        tables += tables_of("trainers_hf", f"Hugging Face Trainer, {hf_steps} steps",
                            interleaved(hf, rounds=rounds), hf_steps - 1,
                            'report_to="none" + HF bar')
    emit(tables, args)


if __name__ == "__main__":
    main()
