"""loopwise.backend: detection without importing the frameworks, Keras's backend as Keras
resolves it, and errors naming the extra to install. Each case runs in a fresh interpreter, so
``sys.modules`` shows exactly what detection imported."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ("torch", "tensorflow", "keras", "jax")


def _python(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KERAS_HOME")}
    clean["PYTHONPATH"] = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])
    clean["KERAS_HOME"] = str(tmp_path / "keras-home")
    clean.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=clean,
                          capture_output=True, text=True, timeout=60)


DETECT = f"""
import json, sys
from loopwise.backend import detect
found = detect()
print(json.dumps({{"torch": found.torch, "tensorflow": found.tensorflow, "keras": found.keras,
                  "keras_backend": found.keras_backend, "source": found.keras_backend_source,
                  "available": found.available, "problems": found.problems,
                  "versions": found.versions,
                  "imported": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def _detect(tmp_path: Path, prelude: str = "", **env: str) -> dict[str, object]:
    proc = _python(tmp_path, prelude + DETECT, **env)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_detection_imports_no_framework(tmp_path: Path) -> None:
    found = _detect(tmp_path)
    assert found["imported"] == []
    assert found["torch"] is (importlib.util.find_spec("torch") is not None)
    assert found["tensorflow"] is (importlib.util.find_spec("tensorflow") is not None)
    if found["torch"]:
        assert isinstance(found["versions"], dict)
        assert str(found["versions"]["torch"]).split(".")[0].isdigit()


needs_keras = pytest.mark.skipif(importlib.util.find_spec("keras") is None,
                                 reason="needs keras: pip install 'loopwise[keras]'")


@needs_keras
def test_keras_backend_from_keras_json_in_keras_home(tmp_path: Path) -> None:
    home = tmp_path / "keras-home"
    home.mkdir()
    (home / "keras.json").write_text(json.dumps({"backend": "torch", "floatx": "float32"}))
    found = _detect(tmp_path)
    assert found["keras_backend"] == "torch"
    assert found["source"] == str(home / "keras.json")
    assert found["keras"] is True and "keras" in found["available"]  # type: ignore[operator]


@needs_keras
def test_keras_backend_env_wins_over_keras_json(tmp_path: Path) -> None:
    home = tmp_path / "keras-home"
    home.mkdir()
    (home / "keras.json").write_text(json.dumps({"backend": "torch"}))
    found = _detect(tmp_path, KERAS_BACKEND="jax")
    assert (found["keras_backend"], found["source"]) == ("jax", "KERAS_BACKEND")
    if importlib.util.find_spec("jax") is None:
        assert found["keras"] is False
        assert "KERAS_BACKEND=torch" in found["problems"]["keras"]  # type: ignore[index]


@needs_keras
def test_keras_defaults_to_tensorflow_and_is_unusable_without_it(tmp_path: Path) -> None:
    found = _detect(tmp_path, "import sys; sys.modules['tensorflow'] = None\n")
    assert (found["keras_backend"], found["source"]) == ("tensorflow", "default")
    assert found["tensorflow"] is False and found["keras"] is False
    assert found["problems"] == {"keras": (
        "Keras's backend is 'tensorflow' (from default) but tensorflow is not installed: "
        "pip install 'loopwise[tensorflow]', or set KERAS_BACKEND=torch")}


def test_require_names_the_extra_to_install(tmp_path: Path) -> None:
    code = """
import sys
sys.modules['tensorflow'] = None
sys.modules['keras'] = None
from loopwise.backend import MissingBackendError, require
for name in ("tensorflow", "keras", "mxnet"):
    try:
        require(name)
    except (MissingBackendError, ValueError) as exc:
        print(type(exc).__name__, exc)
"""
    proc = _python(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "MissingBackendError tensorflow is not installed; install it with: "
        "pip install 'loopwise[tensorflow]'",
        "MissingBackendError keras is not installed; install it with: "
        "pip install 'loopwise[keras]'",
        "ValueError unknown framework 'mxnet'; loopwise knows torch, tensorflow, keras",
    ]


@needs_keras
def test_an_imported_keras_answers_for_itself(tmp_path: Path) -> None:
    found = _detect(tmp_path, "import keras\n", KERAS_BACKEND="torch")
    assert (found["keras_backend"], found["source"]) == ("torch", "keras.config.backend()")
    assert found["keras"] is True
