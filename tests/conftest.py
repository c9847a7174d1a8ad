"""Shared test setup: every test runs in its own temporary working folder, so the default
``./runs`` root and any relative path land there; framework caches go to temp folders too."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / ".mpl"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / ".keras"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


@pytest.fixture(autouse=True)
def _no_active_run_between_tests():
    """Successive TrainingMonitors of one process share the active run (as in a script); each
    test is its own script, so the active run a test leaves is closed after it."""
    from loopwise.record.active import end_active_run, set_active_run

    set_active_run(None)
    yield
    end_active_run()
