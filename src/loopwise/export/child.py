"""The delivery process of an exporter attached with ``delivery="process"``:
``python -m loopwise.export.child``, started by the training process (see
:mod:`loopwise.export.process`), never by hand.

It reads its spec from stdin (the exporter's class and arguments, the run folder, the cursor
where the mirror starts), rebuilds the exporter (delivering from its own thread here, with the
same retries and backoff), and follows the run's record every ``POLL`` seconds, feeding only as
much as the exporter's queue has room for: while the backend is unreachable the record itself
holds what waits, so nothing is dropped. What the exporter reports (delivery counts, its events)
goes back on stdout. A series whose bytes fail their checksum is never delivered: the mirror
gets a ``record_damaged`` event and the run an ``exporter_damaged`` one naming it (on stderr
when the training process is gone); the other series are delivered.

When the training process is gone without closing the run (killed, ``os._exit``), the child
sees it (its parent changes, stdin ends), reads the run's status (``crashed``), delivers what was
committed (at most ``close_timeout`` seconds) and finishes the backend's run with that status
(MLflow: ``FAILED``), then says on stderr what it could not deliver.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from loopwise.export import wire
from loopwise.export.base import Exporter, RunLink
from loopwise.export.payload import feed
from loopwise.record.follow import CHUNK, Cursor, Follower
from loopwise.record.intact import DAMAGED_EVENT
from loopwise.record.verify import DamagedRecordError

POLL = 0.2  # seconds between reads of the record
STATS_EVERY = 0.2  # seconds between delivery counts sent back (when they changed)
NICE = 10  # the delivery process's scheduling priority, below the training process's


class Mirror:
    """The exporter rebuilt from the spec, and the follower of the run's record feeding it."""

    def __init__(self, spec: Mapping[str, Any], out: IO[bytes]) -> None:
        module, name = spec["exporter"]
        cls: Any = importlib.import_module(module)
        for part in name.split("."):
            cls = getattr(cls, part)
        self.exporter: Exporter = cls(*spec["args"], **spec["kwargs"])
        self.exporter.load_state_dict(spec["state"])
        cursor = Cursor()
        cursor.load_state_dict(spec["cursor"])
        self.path = Path(spec["run_path"])
        self.follower = Follower(self.path, cursor)
        self.info: dict[str, Any] = dict(spec["info"])
        self.parent: int = spec["parent_pid"]
        self.parent_alive = True
        self._out = out
        self._lock = threading.Lock()
        self._sent: Any = None
        self._sent_at = 0.0
        self.exporter.link = RunLink(path=self.path, info=lambda: self.info,
                                     global_step=lambda: self.follower.step,
                                     record_event=self._event)

    # -- to the training process ---------------------------------------------------------------
    def _send(self, message: tuple[Any, ...]) -> None:
        if not self.parent_alive:
            raise RuntimeError("the training process is gone")
        try:
            with self._lock:
                wire.send(self._out, message)
        except OSError:
            self.parent_alive = False
            raise

    def _event(self, kind: str, message: str, level: str, data: Mapping[str, Any]) -> None:
        self._send(("event", kind, message, level, dict(data)))

    def _stats(self, kind: str, *head: Any, force: bool = False) -> None:
        state = self.exporter.state_dict()
        now = time.monotonic()
        if not force and (state == self._sent or now - self._sent_at < STATS_EVERY):
            return
        self._sent, self._sent_at = state, now
        with contextlib.suppress(OSError, RuntimeError):  # the parent is gone: run() sees it
            self._send((kind, *head, state, self.exporter.last_error))

    # -- following -----------------------------------------------------------------------------
    def _room(self) -> int:
        return self.exporter.max_pending // 2 - self.exporter.stats().queued

    def pump(self) -> int:
        """Feed what the record committed past the cursor, as far as the queue has room."""
        room = self._room()
        if room <= 0:
            return 0
        increment = self.follower.read(min(CHUNK, room))
        for damage in increment.damage:
            self._damaged(damage)
        return feed(self.exporter, increment)

    def _damaged(self, damage: DamagedRecordError) -> None:
        """Say that ``damage``'s series is left out of the mirror: in the mirror and on the run."""
        self.exporter.log_event(DAMAGED_EVENT, str(damage), level="error")
        name = type(self.exporter).__name__
        message = f"{name} did not deliver {damage.part}: {damage}"
        try:
            self._event("exporter_damaged", message, "error",
                        {"exporter": name, "part": damage.part, "file": str(damage.path)})
        except (OSError, RuntimeError):  # the training process is gone: stderr is left
            print(f"loopwise: {message}", file=sys.stderr, flush=True)

    def drain(self, deadline: float) -> bool:
        """Feed and deliver everything committed until now; False at ``deadline``."""
        while True:
            fed = self.pump()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            idle = self.exporter.flush(min(left, 0.25))
            if idle and fed == 0 and self._room() > 0:
                return True

    def finish(self, status: str, error: str | None) -> None:
        exporter = self.exporter
        deadline = time.monotonic() + exporter.close_timeout
        self.drain(deadline)
        left = self.follower.remaining()
        self.follower.close()
        exporter.close_timeout = max(0.0, deadline - time.monotonic())
        exporter.close_delivery(status, error, report=not self.parent_alive, left=left)
        self._stats("closed", force=True)

    def parent_gone(self) -> None:
        """The training process ended without closing the run: finish as the record says."""
        self.parent_alive = False
        try:
            from loopwise.record.reader import RunReader

            self.info = RunReader(self.path).info
        except Exception:  # an unreadable run.json: what the run said at attach
            pass
        status = str(self.info.get("status"))
        if status in ("running", "None"):
            status = "crashed"
        error = self.info.get("error")
        if not isinstance(error, str):
            error = (f"the training process (pid {self.parent}) ended without closing the run "
                     f"(killed?)")
        self.finish(status, error)

    def run(self, inbox: queue.Queue[tuple[Any, ...] | None]) -> None:
        while True:
            try:
                message = inbox.get(timeout=POLL)
            except queue.Empty:
                message = ("tick",)
            if message is None or os.getppid() != self.parent:
                self.parent_gone()
                return
            kind = message[0]
            if kind == "config":
                self.exporter.set_config(message[1])
            elif kind == "call":
                self.exporter.call(message[1], *message[2])
            elif kind == "flush":
                ok = self.drain(time.monotonic() + message[2])
                self._stats("flushed", message[1], ok, force=True)
            elif kind == "close":
                self.info = dict(message[3])
                self.finish(message[1], message[2])
                return
            self.pump()
            self._stats("stats")


def _read(stream: IO[bytes], inbox: queue.Queue[tuple[Any, ...] | None]) -> None:
    try:
        while True:
            message = wire.receive(stream)
            inbox.put(message)
            if message is None:
                return
    except Exception:  # a garbled pipe: as if the training process were gone
        inbox.put(None)


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group: the training process decides
    # (it closes the run as interrupted, and this process finishes the mirror)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):  # no os.nice on some systems
        os.nice(NICE)  # background work: where cores are short, training goes first
    stdin, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a backend that prints must not write into the pipe
    inbox: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
    threading.Thread(target=_read, args=(stdin, inbox), daemon=True,
                     name="loopwise-export-in").start()
    first = inbox.get()
    if first is None or first[0] != "spec":
        return
    try:
        mirror = Mirror(first[1], out)
    except Exception as exc:  # say why on the run, then stop
        error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            wire.send(out, ("event", "exporter_failed",
                            f"the delivery process could not start the exporter ({error})",
                            "error", {"error": error}))
        raise
    try:
        mirror.run(inbox)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        with mirror._lock:
            os._exit(0)  # a backend's own non-daemon threads must not keep this process


if __name__ == "__main__":
    main()
