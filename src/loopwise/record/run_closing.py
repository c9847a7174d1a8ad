"""How a :class:`~loopwise.record.run.Run` ends: :meth:`close` (helpers stopped, exporters
closed, the store flushed, the final status written), the ``with`` block, and the ``atexit``
hook for a run left open (its base class; the run's state is set in ``run.py``)."""

from __future__ import annotations

import atexit
import contextlib
import json
import sys
from types import TracebackType
from typing import Any, TypeVar

from loopwise.record.run_logging import RunState
from loopwise.record.status import exit_status
from loopwise.utils.isotime import iso

R = TypeVar("R", bound="RunClosing")


class RunClosing(RunState):
    """The closing methods of :class:`~loopwise.record.run.Run`."""

    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        """Stop helpers, flush the store and write the final status. Idempotent."""
        if status not in ("finished", "failed", "interrupted"):
            raise ValueError(
                f"a run closes as 'finished', 'failed' or 'interrupted'; got {status!r}"
            )
        with self._close_lock:
            if self._closed:
                return
            closer_errors: list[str] = []
            while self._closers:
                closer = self._closers.pop()
                try:
                    closer()
                except Exception as exc:  # one bad helper must not lose the record
                    closer_errors.append(f"{closer!r}: {exc}")
                    if self._store.error is None:
                        self._store.add_event(self._clock(), "error", "close_error",
                                              f"a close hook failed: {exc}", None)
            if self._file.failure is not None:
                status = "failed"
                error = error if error is not None else str(self._file.failure)
            if error is not None and self._store.error is None:
                last_line = error.strip().splitlines()[-1] if error.strip() else "error"
                self._store.add_event(self._clock(), "error", "exception", last_line,
                                      json.dumps({"traceback": error}))
            if any(True for _ in self._mirrors):
                self._close_exporters(status, error)
            self._closed = True
            try:
                self._store.close()
            except BaseException as exc:
                self._file.fail(exc)
                raise
            finally:
                self._finish(status, error)

    def _finish(self, status: str, error: str | None) -> None:
        """The last lines of :meth:`close`: exception and close events, the final ``run.json``,
        the exporters. After a write failure the run is ``failed`` with that error, and these
        writes are best effort (the disk may still be full)."""
        if self._file.failure is not None:
            status = "failed"
            error = error if error is not None else str(self._file.failure)
        if error is not None:
            last_line = error.strip().splitlines()[-1] if error.strip() else "error"
            with contextlib.suppress(OSError):
                self._jsonlog.event("exception", last_line, level="error",
                                    data={"traceback": error})
        try:
            self._jsonlog.event("closed", f"run closed as {status}", data={
                "status": status, "global_step": self._global_step})
            self._jsonlog.close()
        except OSError as exc:
            self._file.fail(exc)
            with contextlib.suppress(OSError):
                self._jsonlog.close()
        now = self._clock()
        fields: dict[str, Any] = dict(status=status, end_time=now, heartbeat=now,
                                      ended_at=iso(now), global_step=self._global_step,
                                      epoch=self._epochs.epoch)
        if error is not None:
            fields["error"] = error
        try:
            self._file.update(**fields)
        except OSError:
            if self._file.failure is None:
                raise
        atexit.unregister(self._atexit)
        if self._writer_lock is not None:
            self._writer_lock.release()

    def __enter__(self: R) -> R:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        status, error = exit_status(exc_type, exc, tb)
        self.close(status, error=error)

    def _close_exporters(self, status: str, error: str | None) -> None:
        """Hand the exporters the last rows and close them while the store is still open, so
        that what they say at close (what they could not deliver) lands in the record."""
        with contextlib.suppress(RuntimeError, OSError):  # a failed store: close() raises it
            self._store.flush()
        self._mirrors.close(status, error)

    def _atexit(self) -> None:
        exc = getattr(sys, "last_value", None)  # set when the process dies of an exception
        status, error = exit_status(None if exc is None else type(exc), exc,
                                    None if exc is None else exc.__traceback__)
        if not self.path.is_dir():  # the folder was removed while the run was open
            name = self._file.get("name")
            print(f"loopwise: run {name!r} was not closed and its folder {self.path} is "
                  f"gone; nothing more was recorded", file=sys.stderr)
            return
        self.close(status, error=error)
