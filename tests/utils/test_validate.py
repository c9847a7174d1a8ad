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


def test_one_key_rule_for_every_name_a_record_holds() -> None:
    from loopwise.record import Run, RunReader
    from loopwise.record.stats import metric_stats
    from loopwise.utils.validate import is_key
    from loopwise.watch.health.runner import HealthMonitor

    assert [is_key(k) for k in ("loss", "a b", "", "  ", 3, None)] == [
        True, True, False, False, False, False]
    run = Run.create("runs", "keys")
    health = HealthMonitor(None, console=None)
    for bad in ("", " \t"):  # the writer, the health monitor and the stats refuse alike
        with pytest.raises(ValueError, match="must be a non-empty string"):
            run.log_scalars({bad: 1.0}, step=1)
        with pytest.raises(ValueError, match="must be a non-empty string"):
            health.observe_many(1, {bad: 0.5})
        with pytest.raises(ValueError, match="must be a non-empty string"):
            metric_stats(bad, [1], [1.0])
    run.close()
    with pytest.raises(TypeError, match="key must be a string, got int"):
        RunReader(run.path).series(3)  # type: ignore[arg-type]


def test_int_and_bool_checks_have_one_style() -> None:
    from loopwise.utils.validate import check_bool, check_count, check_int

    assert check_int(np.int64(3), what="epochs", minimum=1) == 3
    assert check_count(0, what="keep_last") == 0
    with pytest.raises(TypeError, match=r"^epochs must be an int \(epochs to train\), got float$"):
        check_int(2.5, what="epochs", minimum=1, hint="epochs to train")
    with pytest.raises(TypeError, match="^keep_last must be an int, got bool$"):
        check_count(True, what="keep_last")
    with pytest.raises(ValueError, match=r"^epochs must be an int >= 1 \(epochs to train\), got 0$"):
        check_int(0, what="epochs", minimum=1, hint="epochs to train")
    assert check_bool(False, what="force") is False
    with pytest.raises(TypeError, match="^force must be True or False, got 1$"):
        check_bool(1, what="force")
