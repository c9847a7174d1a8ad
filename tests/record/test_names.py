import pytest

from loopwise.record.names import generate_run_name, validate_run_name


@pytest.mark.parametrize("name", ["exp1", "a.b-c_d", "x" * 100, "2026-01-01_run.3"])
def test_valid_names_pass(name: str) -> None:
    assert validate_run_name(name) == name


@pytest.mark.parametrize("name", ["", "a/b", "a\\b", "..", ".", "../x", "a..b", "x" * 101,
                                  "has space", "ünï"])
def test_invalid_names_state_the_rule(name: str) -> None:
    with pytest.raises(ValueError, match="letters, digits, '-', '_' and '.', at most 100"):
        validate_run_name(name)


def test_non_string_name() -> None:
    with pytest.raises(TypeError, match="name must be a string, got int"):
        validate_run_name(3)


def test_generated_names_sort_by_time_and_differ() -> None:
    a = generate_run_name(1_700_000_000.0)
    b = generate_run_name(1_700_000_001.0)
    assert a < b
    assert validate_run_name(a) == a
    assert len({generate_run_name(1.0) for _ in range(50)}) == 50
