from pathlib import Path

import numpy as np
import pytest
import torch

from loopwise.record import Run, RunReader
from loopwise.record.errors import CorruptRecordError
from loopwise.train.fit.config import TrainingConfig
from loopwise.utils.validate import (
    check_json,
    check_key,
    check_number,
    check_step,
    check_wall_time,
)


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


def test_a_step_beyond_int64_and_a_time_that_is_no_number_are_refused_at_the_call(
        tmp_path: Path) -> None:
    with Run.create(tmp_path, "v") as run:
        run.log_scalars({"loss": 1.0}, step=1)
        with pytest.raises(ValueError, match=r"step 9223372036854775808 is beyond what the "
                           r"record holds \(a 64-bit integer"):
            run.log_scalars({"loss": 2.0}, step=2**63)
        with pytest.raises(TypeError, match="wall_time must be seconds since the epoch as a "
                           "number .*got str 'x'"):
            run.log_scalars({"loss": 2.0}, step=2, wall_time="x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="wall_time must be a finite number"):
            run.log_system({"cpu_pct": 1.0}, wall_time=float("nan"))
        with pytest.raises(ValueError, match="wall_time must be a finite number"):
            run.log_scalar("loss", 2.0, step=2, wall_time=10**400)
        run.log_scalars({"loss": 3.0}, step=3)
    reader = RunReader(tmp_path / "v")
    assert reader.status == "finished"  # the writer never saw the bad rows
    assert list(reader.series("loss").values) == [1.0, 3.0]


def test_check_step_and_check_wall_time() -> None:
    assert check_step(2**63 - 1) == 2**63 - 1 and check_step(-(2**63)) == -(2**63)
    with pytest.raises(ValueError, match="beyond what the record holds"):
        check_step(-(2**63) - 1)
    with pytest.raises(TypeError, match="step must be an int, got float"):
        check_step(1.0)
    assert check_wall_time(np.float32(2.0)) == 2.0
    with pytest.raises(TypeError, match="got bool"):
        check_wall_time(True)


def test_an_int_json_cannot_write_is_refused_naming_its_key() -> None:
    with pytest.raises(ValueError, match=r"config\['seed'\] is an int of \d+ bits, too long "
                       "to be written as JSON; store it as a string"):
        check_json({"seed": 10**5000}, what="config")


def test_a_config_file_with_a_5000_digit_int_is_an_error_naming_the_file(
        tmp_path: Path) -> None:
    with Run.create(tmp_path, "c", config={"lr": 0.1}) as run:
        run.log_scalar("loss", 1.0, step=1)
    config = tmp_path / "c" / "config.json"
    config.write_text('{"seed": ' + "7" * 5000 + "}")
    with pytest.raises(CorruptRecordError, match=f"{config} is corrupt \\(not JSON loopwise "
                       "can read: Exceeds the limit"):
        RunReader(tmp_path / "c").config()
    saved = tmp_path / "cfg.json"
    saved.write_text('{"epochs": ' + "7" * 5000 + "}")
    with pytest.raises(ValueError, match=f"{saved}: not JSON a TrainingConfig can hold"):
        TrainingConfig.load(saved)
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


def test_int_bounds_optional_ints_and_the_type_error_that_is_a_value_error() -> None:
    from loopwise.utils.validate import ArgumentTypeError, check_int, check_optional_int

    assert check_int(65535, what="port", maximum=65535) == 65535
    assert check_int(-3, what="offset", minimum=None) == -3
    with pytest.raises(ValueError, match=r"^port must be an int from 0 to 65535 \(0: any free "
                                         r"port\), got 65536$"):
        check_int(65536, what="port", maximum=65535, hint="0: any free port")
    with pytest.raises(ValueError, match=r"^delta must be an int <= 5, got 6$"):
        check_int(6, what="delta", minimum=None, maximum=5)
    assert check_optional_int(None, what="total") is None
    assert check_optional_int(np.int32(4), what="total", minimum=1) == 4
    assert type(check_optional_int(np.int32(4), what="total")) is int
    with pytest.raises(ValueError, match=r"^total must be an int >= 1 or None \(steps\), got 0$"):
        check_optional_int(0, what="total", minimum=1, hint="steps")
    with pytest.raises(TypeError, match=r"^total must be an int or None, got str$"):
        check_optional_int("3", what="total", minimum=1)
    # a wrong type is a TypeError, and a ValueError for callers that caught the ValueError
    # the hand-written checks raised before
    for bad in (2.5, True, "3"):
        with pytest.raises(ArgumentTypeError) as info:
            check_int(bad, what="width", minimum=1)
        assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_float_checks_have_the_same_style_and_refuse_nan() -> None:
    from loopwise.utils.validate import check_float, check_non_negative, check_positive

    assert check_positive(np.float32(0.5), what="threshold") == 0.5
    assert check_non_negative(0, what="min_delta") == 0.0
    assert check_float(1, what="dropout", minimum=0, maximum=1) == 1.0
    with pytest.raises(TypeError, match="^threshold must be a finite number > 0, got str$"):
        check_positive("3", what="threshold")
    with pytest.raises(TypeError, match="^min_delta must be a finite number >= 0, got bool$"):
        check_non_negative(True, what="min_delta")
    with pytest.raises(ValueError, match="^threshold must be a finite number > 0, got 0$"):
        check_positive(0, what="threshold")
    for bad in (float("nan"), float("inf")):  # the NaN rule: no argument is NaN (or inf)
        with pytest.raises(ValueError, match=f"^min_delta must be a finite number >= 0, got {bad}$"):
            check_non_negative(bad, what="min_delta")
    with pytest.raises(ValueError, match=r"^dropout must be a finite number in \[0, 1\) "
                                         r"\(a fraction\), got 1.0$"):
        check_float(1.0, what="dropout", minimum=0, maximum=1, open_max=True, hint="a fraction")
    with pytest.raises(ValueError, match="got an integer of about 401 digits, too large"):
        check_positive(10**400, what="lr")


def test_each_check_is_defined_once() -> None:
    import re

    src = Path(__file__).resolve().parents[2] / "src" / "loopwise"
    names = [m.group(1) for p in src.rglob("*.py")
             for m in re.finditer(r"^def (check_\w+)\(", p.read_text(encoding="utf-8"), re.M)]
    for name in ("check_int", "check_float", "check_positive", "check_non_negative",
                 "check_bool", "check_number", "check_key"):
        assert names.count(name) == 1, name
