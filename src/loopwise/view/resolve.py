"""Which run folder a user meant: ``RUN`` on the command line is a folder path, a run name under
the runs root, or a unique prefix of one."""

from __future__ import annotations

import os
from pathlib import Path

from loopwise.record.folder import RUN_FILE
from loopwise.utils.text import printable

DEFAULT_ROOT = "runs"


def resolve_run(run: str | os.PathLike[str], *,
                root: str | os.PathLike[str] = DEFAULT_ROOT) -> Path:
    """The folder of ``run``: a path to a run folder, else the run ``root/run``, else the one
    run under ``root`` whose name starts with ``run``.

    Raises FileNotFoundError when nothing matches and ValueError when a prefix matches several
    runs (the message lists them).
    """
    if not isinstance(run, (str, os.PathLike)) or not str(run):
        raise TypeError(f"run must be a run name or folder path, got {run!r}")
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder path, got {type(root).__name__}")
    given = Path(run)
    if (given / RUN_FILE).is_file():
        return given
    base = Path(root)
    text = str(run)
    if os.sep not in text and "/" not in text and text not in (".", ".."):
        named = base / text
        if (named / RUN_FILE).is_file():
            return named
        if base.is_dir():
            matches = sorted(child.name for child in base.iterdir()
                             if child.name.startswith(text) and (child / RUN_FILE).is_file())
            if len(matches) == 1:
                return base / matches[0]
            if matches:
                shown = ", ".join(printable(m) for m in matches[:10])
                more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
                raise ValueError(f"{printable(text)!s} matches {len(matches)} runs under "
                                 f"{printable(base)}: {shown}{more}; give more of the name")
    if given.exists():
        raise FileNotFoundError(f"{printable(given)} is not a loopwise run folder (no {RUN_FILE})")
    raise FileNotFoundError(f"no run {printable(text)}: not a loopwise run folder, nor a run "
                            f"name or prefix under {printable(base)}; list the runs with "
                            f"`loopwise runs {printable(base)}` or pass --root")
