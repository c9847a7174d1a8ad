"""load_state_dict_safely: weights only, prefixes stripped, missing/unexpected keys reported."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch

from loopwise.checkpoint.weights import load_into, load_state_dict_safely, strip_prefixes


def net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def test_strips_dataparallel_and_compile_prefixes(tmp_path: Path) -> None:
    source = net()
    wrapped = {f"module._orig_mod.{k}": v for k, v in source.state_dict().items()}
    torch.save(wrapped, tmp_path / "w.pth")
    target = net()
    state = load_state_dict_safely(tmp_path / "w.pth", "cpu", model=target, strict=True)
    assert set(state) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    for p, q in zip(source.parameters(), target.parameters(), strict=True):
        assert torch.equal(p, q)


def test_finds_weights_inside_a_checkpoint_dict(tmp_path: Path) -> None:
    source = net()
    torch.save({"epoch": 3, "model_state_dict": source.state_dict(), "optimizer": {}},
               tmp_path / "a.pth")
    torch.save({"loopwise_checkpoint": 1, "state": {"model": source.state_dict(), "epoch": 2}},
               tmp_path / "b.pth")
    for name in ("a.pth", "b.pth"):
        assert set(load_state_dict_safely(tmp_path / name, "cpu")) == set(source.state_dict())


def test_reports_missing_and_unexpected_keys(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    state = net().state_dict()
    state.pop("2.bias")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "w.pth")
    with caplog.at_level(logging.WARNING, logger="loopwise.checkpoint.weights"):
        load_state_dict_safely(tmp_path / "w.pth", "cpu", model=net())
    assert "missing keys ['2.bias']; unexpected keys ['extra.weight']" in caplog.text
    report = load_into(net(), state)
    assert report.missing == ["2.bias"] and report.unexpected == ["extra.weight"]
    assert not report.ok
    with pytest.raises(ValueError, match=r"missing keys \['2.bias'\].*\(strict=True\)"):
        load_state_dict_safely(tmp_path / "w.pth", "cpu", model=net(), strict=True)


def test_shape_mismatch_names_keys_and_shapes(tmp_path: Path) -> None:
    torch.save(torch.nn.Linear(5, 4).state_dict(), tmp_path / "w.pth")
    with pytest.raises(ValueError, match=re.escape("shape mismatch for weight: saved (4, 5), "
                                                   "model (4, 3)")):
        load_state_dict_safely(tmp_path / "w.pth", "cpu", model=torch.nn.Linear(3, 4))


class Payload:
    pass


def test_refuses_pickled_objects_missing_and_corrupt_files(tmp_path: Path) -> None:
    torch.save({"weight": torch.ones(1), "obj": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="holds more than tensors and was not loaded"):
        load_state_dict_safely(tmp_path / "evil.pth", "cpu")
    with pytest.raises(FileNotFoundError, match="no weights file at .*nope.pth"):
        load_state_dict_safely(tmp_path / "nope.pth", "cpu")
    (tmp_path / "bad.pth").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=r"not a readable PyTorch file \(truncated or corrupt"):
        load_state_dict_safely(tmp_path / "bad.pth", "cpu")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match=r"does not hold a state dict \(name -> tensor\); found "
                                         "list"):
        load_state_dict_safely(tmp_path / "list.pth", "cpu")


def test_strip_prefixes() -> None:
    assert strip_prefixes("module.module.fc.weight") == "fc.weight"
    assert strip_prefixes("fc.module.weight") == "fc.module.weight"
