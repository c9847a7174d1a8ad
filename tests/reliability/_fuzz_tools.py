"""Shared pieces of the fuzzing, load and security tests: how many examples (a short,
derandomized pass in ``make test``; ``LOOPWISE_SOAK=1`` for a long random one), hostile text,
the in-process ``loopwise`` command, and the checks every output must pass (no escape sequence
for the terminal, no formula in a CSV cell)."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SOAK = os.environ.get("LOOPWISE_SOAK") == "1"
VIEW_TESTS = Path(__file__).resolve().parents[1] / "view"
EXPORT_TESTS = Path(__file__).resolve().parents[1] / "export"
for _folder in (VIEW_TESTS, EXPORT_TESTS):  # the dashboard and Prometheus server fixtures
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))


def fuzz_settings(quick: int, soak: int | None = None) -> settings:
    """``quick`` examples, derandomized (a stable CI), or ``soak`` (default 20x) random ones
    under ``LOOPWISE_SOAK=1``."""
    return settings(max_examples=(soak or quick * 20) if SOAK else quick,
                    derandomize=not SOAK, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much])


# Text an attacker or an accident puts in a name: terminal escapes (OSC retitles, CSI colours),
# spreadsheet formulas, HTML, path tricks, NUL, bidi and odd Unicode.
HOSTILE = ["\x1b]0;owned\x07", "\x1b[31mred\x1b[0m", "\x9b2J", "=HYPERLINK(\"http://x\")",
           "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR", "<script>alert(1)</script>",
           "../../etc/passwd", "/abs/path", "..", ".", "a/b", "a\\b", "nul\x00byte", "",
           " ", "\u202egnp.exe", "名前", "loss", "epoch/val_loss", "lr", "step", "x" * 300]
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40),
                         st.text(alphabet=st.characters(codec="utf-8"), max_size=12))

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # every control but the newline
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def assert_printable(text: str, *, where: str) -> None:
    """No control character (so no escape sequence) but line ends reaches the terminal."""
    found = _CONTROL.search(text)
    assert found is None, f"{where}: control character {found.group()!r} in {text[:400]!r}"


def assert_no_formula(path: Path) -> None:
    """No CSV cell a spreadsheet would evaluate: a cell starting with = + - @ tab or CR must
    be a number (-0.5 is)."""
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            for cell in row:
                if cell.startswith(FORMULA_START):
                    try:
                        float(cell)
                    except ValueError:
                        raise AssertionError(f"{path}: formula cell {cell!r}") from None
                assert_printable(cell, where=str(path))


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """``loopwise ARGV`` in this process: (exit status, stdout, stderr)."""
    from loopwise.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def assert_clean_cli(code: int, out: str, err: str, argv: Sequence[str]) -> None:
    """Either it worked, or one clear ``loopwise`` error line and status 1 or 2: no traceback,
    no escape sequence on the terminal."""
    assert code in (0, 1, 2), (code, argv, err)
    assert "Traceback" not in err and "Traceback" not in out, (argv, err)
    assert_printable(out, where=f"stdout of {argv!r}")
    assert_printable(err, where=f"stderr of {argv!r}")
    if code == 2:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert last.startswith("loopwise") and "error" in last, (argv, err)


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (to prove nothing was created outside a folder)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}
