"""The --where expression language: comparisons, and/or/not, parentheses, strings, numbers,
key paths, missing keys, and errors that name the bad token."""

from __future__ import annotations

from typing import Any

import pytest

from loopwise.view.where import MISSING, WhereError, parse_where

RUN = {"lr": 0.001, "status": "finished", "optimizer.lr": 0.1, "best.val_loss": 0.2,
       "epoch/val_acc": 0.9, "name": "sweep-3", "amp": True, "my key": 4}
KNOWN = [*RUN, "missing_key"]


def matches(text: str, run: dict[str, Any] = RUN) -> bool:
    return parse_where(text, known=KNOWN)(lambda k: run.get(k, MISSING))


@pytest.mark.parametrize(("text", "expected"), [
    ("lr < 0.01", True), ("lr <= 0.001", True), ("lr > 1e-3", False), ("lr >= 1e-3", True),
    ("lr == 0.001", True), ("lr != 0.001", False),
    ("lr < 0.01 and status == finished", True), ("status == 'finished'", True),
    ('status == "running" or optimizer.lr > 0.05', True),
    ("not (lr < 0.01 and status == finished)", False),
    ("best.val_loss < 0.3 and epoch/val_acc >= 0.9", True),
    ("name == 'sweep-3'", True), ("amp == true", True), ("amp", True), ("not amp", False),
    ("`my key` == 4", True), ("LR < 1 or lr < 1", True),
    ("missing_key < 1", False), ("missing_key != 1", False), ("missing_key == null", True),
    ("lr == '0.001'", False), ("status < 3", False),
    ("lr < 0.01 or lr > 1 and status == running", True),  # and binds tighter than or
])
def test_expressions(text: str, expected: bool) -> None:
    if text.startswith("LR"):
        with pytest.raises(WhereError, match="unknown key 'LR'"):
            matches(text)
        return
    assert matches(text) is expected


@pytest.mark.parametrize(("text", "message"), [
    ("lr < and x", "unexpected 'and' at position 6 of 'lr < and x'; expected a key"),
    ("lr <", "'lr <' ends where a key, a number or a string was expected"),
    ("(lr < 1", "'(lr < 1' ends where ')' to close the '(' at position 1 was expected"),
    ("lr < 1 status == x", "unexpected 'status' at position 8"),
    ("lr ; 1", "unexpected character ';' at position 4"),
    ("lrr < 1", "unknown key 'lrr' at position 1 of 'lrr < 1' (did you mean"),
    ("", "the where expression is empty"),
    ("__import__('os')", "unknown key '__import__' at position 1"),
])
def test_errors_name_the_bad_token(text: str, message: str) -> None:
    with pytest.raises(WhereError) as info:
        matches(text)
    assert message in str(info.value)


def test_a_string_is_required() -> None:
    with pytest.raises(TypeError, match="must be a string, got int"):
        parse_where(3)  # type: ignore[arg-type]
