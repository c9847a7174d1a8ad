"""The evaluation pass: row-weighted mean loss, accuracy, mode restored, early stop."""

from __future__ import annotations

import pytest
import torch

from loopwise.train.fit.evaluate import evaluate
from loopwise.train.step.amp import Amp


def test_loss_is_weighted_by_rows_and_accuracy_counted() -> None:
    model = torch.nn.Linear(2, 3)
    model.train()
    x = torch.randn(5, 2)
    y = model(x).argmax(dim=1).detach()
    y[0] = (y[0] + 1) % 3  # one wrong
    loader = [(x[:4], y[:4]), (x[4:], y[4:])]  # a short last batch
    out = evaluate(model, loader, torch.nn.CrossEntropyLoss(), device=torch.device("cpu"),
                   amp=Amp("cpu", enabled=False), classification=True)
    expected = torch.nn.functional.cross_entropy(model(x), y).item()
    assert out["loss"] == pytest.approx(expected, rel=1e-6)
    assert out["accuracy"] == pytest.approx(4 / 5)
    assert model.training  # restored


def test_should_stop_and_empty_loader() -> None:
    model = torch.nn.Linear(2, 1)
    batches = [(torch.ones(2, 2), torch.zeros(2, 1))] * 5
    seen: list[int] = []
    evaluate(model, batches, torch.nn.MSELoss(), device=torch.device("cpu"),
             amp=Amp("cpu", enabled=False), classification=False,
             on_batch=lambda i, s, c, n: seen.append(n), should_stop=lambda: len(seen) == 2)
    assert seen == [2, 4]
    with pytest.raises(ValueError, match="the evaluation loader yielded no batches"):
        evaluate(model, [], torch.nn.MSELoss(), device=torch.device("cpu"),
                 amp=Amp("cpu", enabled=False), classification=False)
