"""extract_final_predictions and collect_predictions."""

from __future__ import annotations

import pytest
import torch

from loopwise.train.fit.predict import collect_predictions, extract_final_predictions


def test_shapes_and_containers() -> None:
    t = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(extract_final_predictions(t, 2), t)
    assert extract_final_predictions(torch.ones(3), 1).shape == (3, 1)
    seq = torch.arange(24.0).reshape(2, 4, 3)  # (batch, time, outputs): the last step
    assert torch.equal(extract_final_predictions(seq, 3), seq[:, -1, :])
    assert torch.equal(extract_final_predictions((t, "aux"), 2), t)
    assert torch.equal(extract_final_predictions({"logits": t, "h": 0}, 2), t)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"3 values per example but output_dim is 2 "
                                         r"\(output shape \(4, 3\)\)"):
        extract_final_predictions(torch.ones(4, 3), 2)
    with pytest.raises(ValueError, match="no prediction key; expected one of predictions, "
                                         "logits, output, out, got h"):
        extract_final_predictions({"h": 1}, 1)
    with pytest.raises(ValueError, match="output_dim must be an int >= 1, got 0"):
        extract_final_predictions(torch.ones(2, 1), 0)
    with pytest.raises(TypeError, match="model output must be a tensor"):
        extract_final_predictions("x", 1)


def test_collect_predictions_restores_train_mode() -> None:
    model = torch.nn.Linear(2, 1)
    model.train()
    loader = [(torch.ones(3, 2), torch.zeros(3, 1)), (torch.ones(2, 2), torch.zeros(2, 1))]
    preds, targets = collect_predictions(model, loader, 1)
    assert preds.shape == (5, 1) and targets.shape == (5, 1) and model.training
    with pytest.raises(ValueError, match="the loader yielded no batches"):
        collect_predictions(model, [], 1)
