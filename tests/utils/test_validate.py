import numpy as np
import pytest
import torch

from loopwise.utils.validate import check_json, check_key, check_number


def test_check_key_messages() -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        check_key("")
    with pytest.raises(ValueError, match="non-empty string"):
        check_key("   ")
    with pytest.raises(TypeError, match="metric name must be a string, got int"):
        check_key(3)


def test_check_number_accepts_numbers_and_numpy() -> None:
    assert check_number(3) == 3.0
    assert check_number(np.float32(0.5)) == 0.5
    assert check_number(float("nan")) != check_number(float("nan"))


def test_check_number_rejects_with_hint() -> None:
    with pytest.raises(TypeError, match="must be a real number.*got str"):
        check_number("0.3", what="metric 'loss'")
    with pytest.raises(TypeError, match="got bool"):
        check_number(True)
    with pytest.raises(TypeError, match=r"a tensor: log it through TrainingMonitor.log"):
        check_number(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="metric 'n' is an int too large for a float64"):
        check_number(10**400, what="metric 'n'")


def test_check_json_names_the_key() -> None:
    check_json({"a": [1, 2.5, "x", None, {"b": True}]})
    with pytest.raises(TypeError, match=r"config\['opt'\]\['betas'\]\[1\] = .*object"):
        check_json({"opt": {"betas": [0.9, object()]}})
    with pytest.raises(ValueError, match=r"config\['lr'\] = nan cannot be stored as JSON"):
        check_json({"lr": float("nan")})
    with pytest.raises(TypeError, match="JSON keys must be strings"):
        check_json({1: 2})
