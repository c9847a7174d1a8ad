"""Which deep-learning frameworks are installed: torch, TensorFlow, Keras and Keras's backend.

```python
from loopwise.backend import detect, require

found = detect()          # Backends(torch=True, tensorflow=False, keras=True, ...)
found.available           # ("torch", "keras")
require("keras")          # raises MissingBackendError naming pip install 'loopwise[keras]'
```

Nothing heavy is imported: a framework is "installed" when ``importlib.util.find_spec`` finds
it, its version comes from the package metadata, and Keras's active backend is worked out the
way Keras does at import: the ``KERAS_BACKEND`` environment variable, else the ``backend`` of
``keras.json`` in ``$KERAS_HOME`` (default ``~/.keras``, or ``/tmp/.keras`` when the home
folder is not writable), else ``tensorflow``. When Keras is already imported its own answer
(``keras.config.backend()``) is used. Keras is "usable" when it is Keras 3 or later and the
framework of its backend is installed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field

NAMES = ("torch", "tensorflow", "keras")
# What to type to get each framework (torch is a dependency of loopwise itself).
INSTALL = {"torch": "torch", "tensorflow": "'loopwise[tensorflow]'", "keras": "'loopwise[keras]'"}
KERAS_DEFAULT_BACKEND = "tensorflow"
# The module each Keras backend needs (keras.config.backend() names -> importable module).
KERAS_BACKEND_MODULES = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax",
                         "numpy": "numpy", "openvino": "openvino"}
_DISTRIBUTIONS = {"torch": ("torch",), "keras": ("keras",),
                  "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu",
                                 "tensorflow-macos", "tf-nightly")}


class MissingBackendError(ImportError):
    """A framework loopwise was asked to use is not installed (or not usable)."""


@dataclass(frozen=True)
class Backends:
    """What :func:`detect` found. ``versions`` maps each installed framework to its version
    (``None`` when the package metadata has none); ``keras_backend`` is the backend Keras uses
    (or will use when imported), ``keras_backend_source`` where that came from
    (``KERAS_BACKEND``, the path of ``keras.json``, ``default`` or ``keras.config.backend()``);
    ``problems`` says, per framework, why an installed one is not usable."""

    torch: bool
    tensorflow: bool
    keras: bool
    keras_backend: str | None = None
    keras_backend_source: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def available(self) -> tuple[str, ...]:
        """The usable frameworks, in the order torch, tensorflow, keras."""
        return tuple(name for name in NAMES if getattr(self, name))


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package, or a module without a spec
        return False


def _version(name: str) -> str | None:
    for dist in _DISTRIBUTIONS.get(name, (name,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def keras_home() -> str:
    """Keras's configuration folder: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` when
    the home folder is not writable), as Keras computes it."""
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def keras_backend() -> tuple[str, str]:
    """``(backend, source)``: the backend Keras uses or will use, and where that came from."""
    keras = sys.modules.get("keras")
    config = getattr(keras, "config", None)
    if config is not None and callable(getattr(config, "backend", None)):
        return str(config.backend()), "keras.config.backend()"
    env = os.environ.get("KERAS_BACKEND")
    if env:
        return env, "KERAS_BACKEND"
    path = os.path.join(keras_home(), "keras.json")
    try:
        with open(path, encoding="utf-8") as fh:
            chosen = json.load(fh).get("backend")
    except (OSError, ValueError, AttributeError):
        chosen = None
    if isinstance(chosen, str) and chosen:
        return chosen, path
    return KERAS_DEFAULT_BACKEND, "default"


def detect() -> Backends:
    """Find torch, TensorFlow and Keras (and Keras's backend) without importing them."""
    found = {name: _installed(name) for name in NAMES}
    versions = {name: _version(name) for name in NAMES if found[name]}
    problems: dict[str, str] = {}
    backend = source = None
    if found["keras"]:
        backend, source = keras_backend()
        major = (versions.get("keras") or "").split(".")[0]
        module = KERAS_BACKEND_MODULES.get(backend)
        if major.isdigit() and int(major) < 3:
            problems["keras"] = (f"Keras {versions['keras']} is installed; loopwise needs "
                                 "Keras 3 or later: pip install 'loopwise[keras]'")
        elif module is None:
            problems["keras"] = (f"Keras's backend {backend!r} (from {source}) is unknown; use "
                                 f"one of {', '.join(KERAS_BACKEND_MODULES)}")
        elif not _installed(module):
            hint = INSTALL.get(module, module)
            problems["keras"] = (f"Keras's backend is {backend!r} (from {source}) but {module} "
                                 f"is not installed: pip install {hint}, or set "
                                 "KERAS_BACKEND=torch")
        if "keras" in problems:
            found["keras"] = False
    return Backends(torch=found["torch"], tensorflow=found["tensorflow"], keras=found["keras"],
                    keras_backend=backend, keras_backend_source=source, versions=versions,
                    problems=problems)


def require(name: str) -> Backends:
    """Return :func:`detect`'s result when ``name`` (torch, tensorflow or keras) is usable;
    otherwise raise :class:`MissingBackendError` saying what to install."""
    if name not in NAMES:
        raise ValueError(f"unknown framework {name!r}; loopwise knows {', '.join(NAMES)}")
    found = detect()
    if getattr(found, name):
        return found
    problem = found.problems.get(name)
    if problem is not None:
        raise MissingBackendError(problem)
    raise MissingBackendError(f"{name} is not installed; install it with: "
                              f"pip install {INSTALL[name]}")
