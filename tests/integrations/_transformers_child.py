"""Child process of test_transformers.py: a real ``transformers.Trainer.train`` (CPU) of a tiny
BERT built from a config (nothing downloaded) with loopwise's callback; what the test checks is
written as JSON.

Usage: python _transformers_child.py MODE WORKDIR  (MODE: full, kill, resume)
- full: 2 epochs of 8 steps, a log every step, an evaluation every epoch, a checkpoint every 5
  steps; then a train() that raises at step 3 and one stopped by Ctrl-C at step 3, the status
  read right after each;
- kill: the same, SIGKILLed at step 8 (the record holds steps 6 and 7, which the resume from
  checkpoint-5 runs again);
- resume: ``train(resume_from_checkpoint=<checkpoint-5>)`` to the end, into the killed run;
- nan: one epoch whose loss becomes NaN at step ``NAN_STEP`` (its gradients, then the weights,
  with it); the run's health events are written.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch
from _trainer_child_common import ListRecorder, write_result
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from loopwise.record import RunReader
from loopwise.transformers import LoopwiseCallback

EPOCHS, STEPS, BATCH = 2, 8, 8
NAN_STEP = 4


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 50, (n, 8), generator=g)
        self.y = (self.x[:, 0] > 25).long()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.x[i], "labels": self.y[i]}


class NanAt(TrainerCallback):  # type: ignore[misc]
    """From step ``step`` on the model's loss is NaN (set as the step begins)."""

    def __init__(self, step: int, model: Any) -> None:
        self.step, self.model = step, model

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step + 1 == self.step:
            self.model.nan = True


class NanBert(BertForSequenceClassification):  # type: ignore[misc]
    nan = False

    def forward(self, input_ids: Any = None, labels: Any = None, **kwargs: Any) -> Any:
        out = super().forward(input_ids=input_ids, labels=labels, **kwargs)
        if self.nan and out.loss is not None:
            out.loss = out.loss * float("nan")
        return out


class StopAt(TrainerCallback):  # type: ignore[misc]
    """At the end of step ``step``: SIGKILL (after the record got every step so far), raise,
    or Ctrl-C."""

    def __init__(self, step: int, how: str, loopwise: LoopwiseCallback) -> None:
        self.step, self.how, self.loopwise = step, how, loopwise

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step != self.step:
            return
        if self.how == "kill":
            assert self.loopwise.steps is not None and self.loopwise.run is not None
            self.loopwise.steps.flush()
            self.loopwise.run.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        raise KeyboardInterrupt if self.how == "ctrl-c" else RuntimeError("boom")


def make(work: Path, out: str, name: str, stop: tuple[int, str] | None = None,
         nan_at: int = 0) -> tuple[Trainer, LoopwiseCallback, ListRecorder]:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
                        num_labels=2)
    args = TrainingArguments(output_dir=str(work / out), num_train_epochs=EPOCHS,
                             per_device_train_batch_size=BATCH, logging_steps=1,
                             eval_strategy="epoch", save_strategy="steps", save_steps=5,
                             report_to="none", use_cpu=True, seed=0, learning_rate=1e-3)
    recorder = ListRecorder()
    loopwise = LoopwiseCallback(root=work / "runs", name=name, exporters=[recorder],
                                flush_interval=0.05)
    callbacks = [StopAt(*stop, loopwise)] if stop else []
    model = (NanBert if nan_at else BertForSequenceClassification)(config)
    if nan_at:
        callbacks.append(NanAt(nan_at, model))
    trainer = Trainer(model=model, args=args,
                      train_dataset=Tokens(STEPS * BATCH, 1), eval_dataset=Tokens(16, 2),
                      callbacks=callbacks)
    return trainer, loopwise.attach(trainer), recorder


def main(mode: str, work: Path) -> None:
    if mode == "nan":
        trainer, loopwise, _ = make(work, "out-nan", "hf-nan", nan_at=NAN_STEP)
        trainer.train()
        assert loopwise.run is not None
        reader = RunReader(loopwise.run.path)
        loss = reader.series("loss")
        write_result(work, mode, {"run": str(loopwise.run.path), "events": [
            {"kind": e.kind, "message": e.message, "data": e.data} for e in reader.events()],
            "loss": [[int(s), repr(float(v))] for s, v in zip(loss.steps, loss.values)]})
        return
    if mode == "resume":
        trainer, loopwise, recorder = make(work, "out-kill", "hf-kill")
        trainer.train(resume_from_checkpoint=str(work / "out-kill" / "checkpoint-5"))
    else:
        stop = (8, "kill") if mode == "kill" else None
        trainer, loopwise, recorder = make(work, f"out-{mode}", f"hf-{mode}", stop)
        trainer.train()
    assert loopwise.run is not None
    result: dict[str, Any] = {**recorder.result(), "run": str(loopwise.run.path)}
    for how in ("exception", "ctrl-c") if mode == "full" else ():
        trainer, loopwise, _ = make(work, f"out-{how}", f"hf-{how}", (3, how))
        try:
            trainer.train()
        except (RuntimeError, KeyboardInterrupt) as exc:
            assert loopwise.run is not None
            reader = RunReader(loopwise.run.path)
            result[how] = {"raised": type(exc).__name__, "status": reader.info["status"],
                           "events": [e.kind for e in reader.events()]}
    write_result(work, mode, result)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
