"""The error of a state that cannot be restored exactly."""


class ResumeError(RuntimeError):
    """A saved state cannot be restored exactly (missing key, shape, device count, ...)."""
