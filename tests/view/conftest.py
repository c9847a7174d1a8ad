"""Fixtures of the view tests (helpers in _view_kit.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _view_kit import CHROMIUM, CHROMIUM_ARGS, HOSTILE, Server, _need_chromium, make_run


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_run(root, "alpha-1", seed=1, config={"lr": 0.1, "batch_size": 32})
    make_run(root, "alpha-2", seed=2, config={"lr": 0.01, "batch_size": 32}, spike_at=150)
    make_run(root, "beta", seed=3, config={"lr": 0.1, "batch_size": 64}, extra_key=HOSTILE)
    return root


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LOOPWISE_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[Any]:
    _need_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("LOOPWISE_REQUIRE_SERVERS") == "1":
            raise
        pytest.skip("playwright is not installed (pip install playwright)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def server_factory() -> Iterator[Any]:
    started: list[Server] = []

    def start(root: Path, token: str | None = None) -> Server:
        server = Server(root, token)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
