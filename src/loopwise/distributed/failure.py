"""When one rank of a ``torchrun`` group fails: its traceback reaches rank 0's record, and no
rank waits forever.

- Every failing rank publishes its traceback (with the time) in the process group's store
  (:func:`publish_failure`) and stops taking part in loopwise's collectives
  (:attr:`GroupState.broken`).
- ``torchrun`` stops the other ranks (SIGTERM), which :func:`install_hooks` turns into
  :class:`RankFailed` in the main thread; a rank blocked in a collective with a dead peer gets
  gloo's error at once, or the process group's timeout (``init_process_group(timeout=...)``).
- Rank 0 closes its run ``failed`` with the tracebacks published, earliest (the root cause)
  first (:func:`failure_report`), then its own. An exception that no ``with`` block caught goes
  the same way, through ``sys.excepthook``, before the interpreter's exit hooks run.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

FAILED_KEY = "loopwise/failed/rank"


class RankFailed(RuntimeError):
    """Another rank of the group failed (its traceback is in the message)."""


@dataclass
class GroupState:
    """This process's part in the group: what outlives one loop (one per process)."""

    rank: int
    world_size: int
    broken: bool = False
    sampler: Any = None
    hooks: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


_STATE: ContextVar[GroupState | None] = ContextVar("loopwise_group_state", default=None)


def group_state(rank: int, world_size: int) -> GroupState:
    """The process's :class:`GroupState` (made on the first call)."""
    state = _STATE.get()
    if state is None or (state.rank, state.world_size) != (rank, world_size):
        state = GroupState(rank, world_size)
        _STATE.set(state)
    return state


def _store() -> Any:
    try:
        import torch.distributed as dist

        return dist.distributed_c10d._get_default_store()
    except Exception:  # not every launcher gives the default group a store
        return None


def publish_failure(state: GroupState, error: str) -> None:
    """Tell the other ranks, through the group's store, why this rank failed."""
    state.broken = True
    store = _store()
    if store is None:
        return
    try:
        store.set(f"{FAILED_KEY}{state.rank}", json.dumps({"time": time.time(), "error": error}))
    except Exception:  # the store may be gone with the launcher: the local close still counts
        return


def peer_failures(state: GroupState, *, wait_s: float = 0.0) -> list[tuple[float, int, str]]:
    """``(time, rank, traceback)`` of the other ranks that published one, waiting up to
    ``wait_s`` seconds for a first one."""
    store = _store()
    if store is None:
        return []
    deadline = time.monotonic() + wait_s
    while True:
        found: list[tuple[float, int, str]] = []
        for rank in range(state.world_size):
            key = f"{FAILED_KEY}{rank}"
            if rank == state.rank:
                continue
            try:
                if store.check([key]):
                    item = json.loads(store.get(key).decode("utf-8", "replace"))
                    found.append((float(item["time"]), rank, str(item["error"])))
            except Exception:
                return sorted(found)
        if found or time.monotonic() >= deadline:
            return sorted(found)
        time.sleep(0.05)


def failure_report(state: GroupState, own: str | None, *, wait_s: float = 1.0) -> str | None:
    """A loop of this rank ends ``failed`` with ``own``: publish it (unless it only reports
    another rank's failure) and return what to record: every failed rank's traceback, the
    earliest first."""
    own_text = own or ""
    only_peers = f"{__name__}.RankFailed:" in own_text  # this rank stopped for another's failure
    if own is not None and not only_peers:
        publish_failure(state, own_text)
    state.broken = True
    peers = peer_failures(state, wait_s=wait_s if state.rank == 0 else 0.0)
    if not only_peers:
        peers = [p for p in peers if p[2] not in own_text]
    if not peers:
        return own
    parts = [f"rank {rank} failed{' first' if i == 0 else ''}:\n{text}"
             for i, (_, rank, text) in enumerate(peers)]
    if only_peers:  # its own traceback only repeats theirs
        parts.append(f"rank {state.rank} then stopped: its next exchange with the group found "
                     "the failure above")
    elif own:
        parts.append(f"rank {state.rank} then stopped:\n{own_text}")
    return "\n".join(parts)


def install_hooks(state: GroupState) -> None:
    """Once per process (main thread): SIGTERM raises :class:`RankFailed`; an uncaught
    exception publishes this rank's traceback and closes the active run ``failed`` with every
    rank's, before the interpreter exits."""
    if state.hooks or threading.current_thread() is not threading.main_thread():
        return
    state.hooks = True
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        def on_term(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            state.broken = True
            peers = "\n".join(f"rank {rank} failed:\n{text}"
                              for _, rank, text in peer_failures(state, wait_s=1.0))
            raise RankFailed("stopped by SIGTERM (torchrun stops the group when a rank fails)"
                             + (f"\n{peers}" if peers else ""))

        signal.signal(signal.SIGTERM, on_term)
    previous = sys.excepthook

    def on_uncaught(kind: type[BaseException], exc: BaseException,
                    tb: TracebackType | None) -> None:
        try:
            if not issubclass(kind, KeyboardInterrupt):
                import traceback

                from loopwise.record.active import active_run
                from loopwise.record.opening import end_run

                text = "".join(traceback.format_exception(kind, exc, tb))
                error = failure_report(state, text)
                run = active_run()
                if run is not None:
                    end_run(run, status="failed", error=error)
        finally:
            previous(kind, exc, tb)

    sys.excepthook = on_uncaught
