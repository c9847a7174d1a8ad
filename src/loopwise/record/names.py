"""Run names: generated ones sort by time; given ones follow one simple, safe rule."""

from __future__ import annotations

import re
import secrets
import time

NAME_RULE = (
    "a run name may hold letters, digits, '-', '_' and '.', at most 100 characters, "
    "and may not be '.' or '..' or contain a path separator"
)
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def validate_run_name(name: object, *, what: str = "name") -> str:
    """Return ``name`` if it is a valid run name, else raise ``ValueError`` stating the rule."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__}; {NAME_RULE}")
    if not _NAME_RE.fullmatch(name) or name in (".", "..") or ".." in name:
        raise ValueError(f"invalid run {what} {name!r}: {NAME_RULE}")
    return name


def generate_run_name(now: float | None = None) -> str:
    """A name that sorts by creation time: ``YYYYmmdd-HHMMSS-<6 hex>`` (UTC)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(3)}"
