"""``Workflow``: seed 002's experiment runner. ``runner`` (the ``Workflow`` orchestration),
``trainer`` (the abstract ``Trainer``), ``passes`` (one epoch's ``train_loop()`` and
``evaluate()``), ``state`` (what a checkpoint holds and how a resume restores it), ``checks``
(arguments, ``args.json``) and ``experiment`` (``args.json``, ``history.csv``)."""

from loopwise.train.workflow.result import WorkflowResult
from loopwise.train.workflow.runner import Workflow
from loopwise.train.workflow.trainer import Trainer

__all__ = ["Trainer", "Workflow", "WorkflowResult"]
