"""``Trainer``: what a user writes once (build, train one epoch, evaluate); ``Workflow`` runs it.

```python
class MnistTrain(Trainer):
    def __init__(self, args):
        self.args = args

    def setup(self):
        self.model = Net()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.args["lr"])
        self.loader = DataLoader(ds, batch_size=64, sampler=ResumableSampler(ds, seed=0))

    def train_loop(self):
        monitor = self.track(self.loader, "train")        # progress, record, mid-epoch resume
        for x, y in monitor:
            loss = self.loss_fn(self.model(x), y)
            ...
            monitor.log({"loss": loss})
        return {"train_loss": monitor.averages()["loss"]}

    def evaluate(self):
        return {"val_acc": ...}
```

Optional attributes: ``scheduler`` (an LR scheduler) and ``scaler`` (an AMP GradScaler) are
saved and restored with the checkpoint; override ``get_scheduler``/``get_scaler`` to name them
otherwise. ``run`` is the experiment's ``loopwise.record.Run`` while a Workflow runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from loopwise.record.recorder import TrainingRun
from loopwise.watch.monitor import TrainingMonitor

TrackFactory = Callable[[Iterable[Any], "str | None", dict[str, Any]], TrainingMonitor[Any]]


class Trainer(ABC):
    """Subclass and implement :meth:`setup`, :meth:`train_loop` and :meth:`evaluate`.

    ``setup()`` must set the model, optimizer (by default ``self.model``/``self.optimizer``;
    override :meth:`get_model`/:meth:`get_optimizer` for other names) and everything else that
    depends on ``self.args``. It runs once per process, before a checkpoint is loaded.
    """

    args: dict[str, Any]
    model: Any = None
    optimizer: Any = None
    scheduler: Any = None
    scaler: Any = None
    run: TrainingRun | None = None
    _loopwise_track: TrackFactory | None = None

    @abstractmethod
    def setup(self) -> None:
        """Build the model, optimizer, data loaders, loss... from ``self.args``."""

    @abstractmethod
    def train_loop(self) -> dict[str, float]:
        """Train one epoch; return its metrics, e.g. ``{"train_loss": 0.31}``."""

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """Evaluate; return the metrics, e.g. ``{"val_loss": 0.4, "val_acc": 0.9}``."""

    def get_model(self) -> Any:
        return self.model

    def get_optimizer(self) -> Any:
        return self.optimizer

    def get_scheduler(self) -> Any:
        """The LR scheduler to checkpoint (``self.scheduler``; None when there is none)."""
        return self.scheduler

    def get_scaler(self) -> Any:
        """The AMP grad scaler to checkpoint (``self.scaler``; None when there is none)."""
        return self.scaler

    def track(self, iterable: Iterable[Any], desc: str | None = None,
              **options: Any) -> TrainingMonitor[Any]:
        """Iterate ``iterable`` through a :class:`~loopwise.TrainingMonitor`.

        Under a Workflow the monitor records into the experiment's run, and the first loader
        tracked in ``train_loop`` gets mid-epoch checkpoints (``checkpoint_every``) and resume.
        Outside a Workflow it is a plain ``TrainingMonitor(iterable, desc, **options)``.
        """
        factory = self._loopwise_track
        if factory is not None:
            return factory(iterable, desc, options)
        return TrainingMonitor(iterable, desc, **options)
