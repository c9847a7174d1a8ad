"""``setup_logging(model_name)``: the reference's training log, with stdlib ``logging``.

A logger ``loopwise.fit.<model_name>`` writing ``<log_dir>/<model_name>_training.log`` (appended,
so a resumed run keeps its history) and, unless ``console=False``, the console; both lines carry
a timestamp. Calling it again for the same name replaces the handlers it added instead of
doubling every line. :func:`close_logging` detaches and closes them.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

FORMAT = "%(asctime)s - %(levelname)s - %(message)s"
_MARK = "_loopwise_handler"


def log_file_path(model_name: str, log_dir: str | Path = ".") -> Path:
    return Path(log_dir) / f"{model_name}_training.log"


def setup_logging(model_name: str, *, log_dir: str | Path = ".", level: int = logging.INFO,
                  console: bool = True, stream: TextIO | None = None) -> logging.Logger:
    """Return the logger for ``model_name``, writing to its log file (and the console)."""
    if not isinstance(model_name, str) or not model_name.strip() or "/" in model_name:
        raise ValueError(f"model_name must be a non-empty name without '/', got {model_name!r}")
    folder = Path(log_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"log_dir {folder} is not a folder; create it first")
    logger = logging.getLogger(f"loopwise.fit.{model_name}")
    close_logging(logger)
    logger.setLevel(level)
    logger.propagate = False
    formatter = logging.Formatter(FORMAT)
    handlers: list[logging.Handler] = [
        logging.FileHandler(log_file_path(model_name, folder), encoding="utf-8")
    ]
    if console:
        handlers.append(logging.StreamHandler(stream if stream is not None else sys.stderr))
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _MARK, True)
        logger.addHandler(handler)
    return logger


def close_logging(logger: logging.Logger) -> None:
    """Detach and close the handlers :func:`setup_logging` added to ``logger``."""
    for handler in list(logger.handlers):
        if getattr(handler, _MARK, False):
            logger.removeHandler(handler)
            handler.close()
