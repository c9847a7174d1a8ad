"""Delivery from a process of its own (``delivery="process"``): the training process's side.

Attaching the exporter to a run starts ``python -m loopwise.export.child`` with this process's
interpreter. The child rebuilds the exporter from its constructor arguments and follows the
run's record (:mod:`loopwise.record.follow`): nothing of the delivery runs in the training
process but two threads that sleep on pipes: one writes the few messages the child needs (the
config, calls such as ``log_histograms``, ``flush``, ``close``), one reads what it says back
(delivery counts, the exporter's events, which this side records on the run). The store's writer
thread only counts the points it commits (so that the points a child that hung could not deliver
can still be counted). At close the child drains for at most ``close_timeout`` seconds, finishes
the backend's run and exits; it is killed by its PID if it is still there ``STARTUP_GRACE``
seconds later.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TextIO

from loopwise.export import wire
from loopwise.export.link import RunLink
from loopwise.record.follow import Follower


class Rebuildable(Protocol):
    """What a delivery process needs of its exporter (an :class:`~loopwise.export.base.Exporter`):
    the arguments it was made with, its state, and where its results and errors go."""

    init_args: tuple[tuple[Any, ...], dict[str, Any]]
    backend: str
    process_env: Mapping[str, str]  # environment defaults of the delivery process
    last_error: str | None
    link: RunLink

    @property
    def stream(self) -> TextIO: ...

    def state_dict(self) -> dict[str, Any]: ...

    def absorb(self, state: Mapping[str, Any], last_error: str | None) -> None: ...


STARTUP_GRACE = 15.0  # seconds past close_timeout: the child's start-up and last backend calls


def _package_root() -> str:
    """The folder holding the ``loopwise`` package (``src/`` of a checkout)."""
    return str(Path(__file__).resolve().parents[2])


class DeliveryProcess:
    """One exporter's delivery process (see the module docstring)."""

    def __init__(self, exporter: Rebuildable, run_path: Path, info: Mapping[str, Any]) -> None:
        args, kwargs = exporter.init_args
        follower = Follower(run_path)
        try:
            cursor = follower.end()  # what is committed now was for the thread of the past
        finally:
            follower.close()
        spec = {"exporter": (type(exporter).__module__, type(exporter).__qualname__),
                "args": args, "kwargs": {**{k: v for k, v in kwargs.items() if k != "stream"},
                                         "delivery": "thread"},
                "run_path": str(run_path), "info": dict(info), "cursor": cursor.state_dict(),
                "state": exporter.state_dict(), "parent_pid": os.getpid()}
        try:
            pickle.dumps(spec)
        except Exception as exc:
            raise TypeError(f"{type(exporter).__name__} is delivered from a process of its own, "
                            f"rebuilt there from its arguments, and one of them cannot be sent "
                            f"to it ({exc}); pass plain values, or delivery='thread'") from exc
        if not sys.executable:
            raise RuntimeError("delivery='process' starts this Python interpreter again and "
                               "sys.executable is empty here; pass delivery='thread'")
        self._exporter = exporter
        self._cond = threading.Condition()
        self._outbox: deque[tuple[Any, ...]] = deque([("spec", spec)])
        self._replies: dict[int, bool] = {}
        self._tokens = 0
        self._committed = 0
        self._closed = False  # the child said it finished
        self._gone = False  # its pipes are closed
        env = {**exporter.process_env, **os.environ}  # the user's own settings win
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(),
                                                          env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen([sys.executable, "-m", "loopwise.export.child"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     close_fds=True)
        name = f"loopwise-export-{exporter.backend}"
        self._sender = threading.Thread(target=self._send_loop, daemon=True, name=name + "-out")
        self._reader = threading.Thread(target=self._read_loop, daemon=True, name=name + "-in")
        self._sender.start()
        self._reader.start()

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    # -- from the exporter ---------------------------------------------------------------------
    def count(self, n: int) -> None:
        """``n`` points committed by the run (the store's writer thread)."""
        with self._cond:
            self._committed += n

    def pending(self, done: int) -> int:
        with self._cond:
            return max(0, self._committed - done)

    def send(self, message: tuple[Any, ...]) -> None:
        with self._cond:
            if not self._gone:
                self._outbox.append(message)
                self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._tokens += 1
            token = self._tokens
        self.send(("flush", token, timeout))
        with self._cond:
            while token not in self._replies and not self._gone:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
            return self._replies.pop(token, False)

    def close(self, status: str, error: str | None, info: Mapping[str, Any],
              timeout: float) -> str | None:
        """Ask the child to drain (``timeout`` s), finish and exit; None when it did, else why
        not (it was then killed)."""
        self.send(("close", status, error, dict(info)))
        why = None
        try:
            self.proc.wait(timeout + STARTUP_GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            why = (f"the delivery process (pid {self.pid}) did not finish within "
                   f"{timeout + STARTUP_GRACE:g} s and was stopped")
        self._reader.join(5.0)
        with self._cond:
            self._gone = True
            self._cond.notify_all()
        self._sender.join(5.0)
        if why is None and not self._closed:
            why = f"the delivery process (pid {self.pid}) ended with code {self.proc.returncode}"
        return why

    def unaccounted(self, delivered: int, dropped: int, undelivered: int) -> int:
        with self._cond:
            return max(0, self._committed - delivered - dropped - undelivered)

    # -- threads -------------------------------------------------------------------------------
    def _send_loop(self) -> None:
        stream = self.proc.stdin
        assert stream is not None
        try:
            while True:
                with self._cond:
                    while not self._outbox and not self._gone:
                        self._cond.wait()
                    if not self._outbox:
                        return
                    batch = list(self._outbox)
                    self._outbox.clear()
                for message in batch:
                    wire.send(stream, message)
                    if message[0] == "close":
                        return
        except OSError:  # the child is gone: the reader sees it too
            pass
        finally:
            with contextlib.suppress(OSError):
                stream.close()

    def _read_loop(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        try:
            while True:
                message = wire.receive(stream)
                if message is None:
                    break
                self._handle(message)
        except Exception as exc:  # a garbled pipe: the child is treated as gone
            self._exporter.last_error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._cond:
                self._gone = True
                self._outbox.clear()
                self._cond.notify_all()
            stream.close()

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "event":
            _, event_kind, text, level, data = message
            sink = self._exporter.link.record_event
            if sink is not None:
                try:
                    sink(event_kind, text, level, data)
                except Exception:  # the run closed already: say it on stderr
                    print(f"loopwise: {text}", file=self._exporter.stream)
            return
        if kind in ("stats", "flushed", "closed"):
            self._exporter.absorb(message[-2], message[-1])
        with self._cond:
            if kind == "flushed":
                self._replies[message[1]] = bool(message[2])
            elif kind == "closed":
                self._closed = True
            self._cond.notify_all()
