"""Training under ``torchrun`` (DDP): one bar, reduced metrics, one record, bounded failures.

The loop-side accumulator (``watch/accumulator.py``) calls a :class:`Reducer` at each refresh
when a process group is initialised (:func:`loop_reducer`, which imports no torch unless
``torch.distributed`` was imported and initialised). The reducer knows nothing of ``watch/``:
it returns the merged columns, and ``watch.system_run.start_rank_system`` starts a rank's
system sampler into its sample buffer. Collectives must
happen at the same points on every rank, so under a process group:

- a loop refreshes every :attr:`Reducer.every` steps (the same number on every rank, agreed at
  each refresh from rank 0's measured rate so that one comes about every ``target_s``), and at
  the end of each pass; never on the wall clock, which differs per rank;
- each refresh is ONE ``all_gather`` of a fixed-size byte buffer holding every rank's window
  (all keys, all steps), its buffered system samples and its proposal for the next interval;
  every rank then merges the same data (``distributed/merge.py``): the same global step, the
  same reduced values (mean; weighted means and summed weights where the loop gave batch
  sizes); rank 0 alone records them, with every rank's system samples as ``rank{r}/<name>``.
  A window bigger than the buffer grows it for every rank (a second gather, that time only).

A rank that fails publishes its traceback in the process group's store before it exits;
``torchrun`` then stops the other ranks (SIGTERM, turned into :class:`RankFailed` here), and
rank 0 closes the run ``failed`` with the failed rank's traceback. Collectives are bounded by
the process group's timeout (``init_process_group(timeout=...)``).
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from loopwise.distributed.failure import (
    GroupState,
    RankFailed,
    failure_report,
    group_state,
    install_hooks,
    peer_failures,
)
from loopwise.distributed.local import quiet
from loopwise.distributed.merge import (
    merge_windows,
    next_interval,
    rank_samples,
)

__all__ = ["RankFailed", "Reducer", "loop_reducer", "process_group_active", "quiet"]

_HEADER = 8  # bytes: the payload's length, little endian


def process_group_active() -> bool:
    """A ``torch.distributed`` process group is initialised (without importing torch)."""
    dist = sys.modules.get("torch.distributed")
    return bool(dist is not None and dist.is_available() and dist.is_initialized())


def loop_reducer(*, target_s: float = 0.5) -> Reducer | None:
    """A :class:`Reducer` for a new loop when a process group is initialised, else None.
    ``LOOPWISE_DISTRIBUTED=0`` in the environment opts out: each process's loops then behave
    as in a single process (for a script that makes its monitors on rank 0 only)."""
    if os.environ.get("LOOPWISE_DISTRIBUTED", "1") == "0" or not process_group_active():
        return None
    return Reducer(target_s=target_s)


class _Synced:
    def __init__(self, iterable: Iterable[Any], reducer: Reducer,
                 refresh: Callable[[], None]) -> None:
        self.iterable, self.reducer, self.refresh = iterable, reducer, refresh

    def __iter__(self) -> Iterator[Any]:
        done = 0
        reducer, refresh = self.reducer, self.refresh
        for item in self.iterable:
            if done >= reducer.every:
                refresh()
                done = 0
            done += 1
            yield item


class Reducer:
    """One loop's cross-rank reduction (see the module doc)."""

    def __init__(self, *, target_s: float = 0.5, every: int = 8) -> None:
        import torch.distributed as dist

        if not target_s > 0:
            raise ValueError(f"target_s must be > 0 seconds, got {target_s!r}")
        self._dist = dist
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.every = every
        self.target_s = float(target_s)
        self.state: GroupState = group_state(self.rank, self.world_size)
        self.syncs = 0
        self._capacity = 1 << 16
        self._t_last = time.perf_counter()

    # -- the loop ----------------------------------------------------------------------------
    def wrap(self, iterable: Iterable[Any], refresh: Callable[[], None]) -> Iterable[Any]:
        """``iterable`` (iterated anew each pass), calling ``refresh()`` before each item after
        every :attr:`every` steps: the sync points, identical on every rank."""
        return _Synced(iterable, self, refresh)

    def attach(self, acc: Any, *, train: bool = True) -> None:
        """Reduce ``acc``'s refreshes. A training loop starts at rank 0's global step on every
        rank (one exchange when the loop is made: the other ranks have no run to count it)."""
        acc.reducer = self
        if train and not self.state.broken:
            acc.step0 = int(self.exchange({"step0": acc.step0})[0]["step0"])

    def attach_monitor(self, acc: Any, iterable: Iterable[Any],
                       refresh: Callable[[float], None], *, train: bool) -> Iterable[Any]:
        """A TrainingMonitor's accumulator and iterable: the iterable to loop over, which
        calls ``refresh(now)`` every :attr:`every` steps; the failure hooks. (The rank's system
        sampler is started by ``watch.system_run.start_rank_system``.)"""
        self.attach(acc, train=train)
        self.install_sigterm()
        return self.wrap(iterable, lambda: refresh(time.perf_counter()))

    def attach_session(self, rec: Any) -> None:
        """A TrainingSession's recorder: refresh every :attr:`every` steps (not on the clock);
        the phase-end values (``resolved``) averaged over the ranks."""
        acc = rec.acc
        self.attach(acc)
        reducer = self
        resolved = rec.resolved

        def every_n_steps(now: float) -> bool:
            return len(acc.times) >= reducer.every

        def resolved_everywhere(row: dict[str, Any] | None) -> dict[str, float]:
            return reducer.reduce_values(resolved(row))

        rec.flush_due = every_n_steps
        rec.resolved = resolved_everywhere
        self.install_sigterm()

    # -- the refresh -------------------------------------------------------------------------
    def reduce(self, acc: Any, window: Any, weights: dict[str, list[float]], step0: int
               ) -> tuple[dict[str, Any], bool, dict[str, list[float]]]:
        """Called by the accumulator's flush: the window's ``(columns, uniform, weights)``
        reduced over the ranks (and, on rank 0, every rank's system samples written to the
        run)."""
        if self.state.broken:
            return window.columns, window.uniform, weights
        now = time.perf_counter()
        steps = acc.step0 - step0
        proposal = next_interval(steps, now - self._t_last, self.target_s) if steps else self.every
        self._t_last = now
        sampler = self.state.sampler
        payload = {"step0": step0, "n": steps, "cols": window.columns, "w": weights,
                   "sys": sampler.run.drain() if sampler is not None else [],
                   "every": proposal}
        try:
            payloads = self.exchange(payload)
        except RankFailed:
            self.state.broken = True
            raise
        except Exception as exc:  # a peer died mid-collective, or the group timed out
            self.state.broken = True
            peers = "\n".join(f"rank {r} failed:\n{text}"
                              for _, r, text in peer_failures(self.state, wait_s=1.0))
            raise RankFailed(peers or f"a collective of loopwise failed: {exc}") from exc
        self.syncs += 1
        first = payloads[0]
        if steps or first["n"]:
            self.every = max(1, int(first["every"]))
        acc.step0 = int(first["step0"]) + int(first["n"])  # rank 0's numbering, everywhere
        columns, merged_weights, uniform = merge_windows(payloads)
        run = acc.run
        if run is not None and self.rank == 0 and not run.closed:
            for wall, values in rank_samples(payloads):
                run.log_system(values, wall_time=wall)
        keep = {k: v for k, v in merged_weights.items() if k in weights} if weights else {}
        return columns, uniform, keep

    def reduce_values(self, values: Mapping[str, float]) -> dict[str, float]:
        """``values`` (e.g. a validation pass's means) averaged over the ranks: one gather."""
        if self.state.broken:
            return dict(values)
        payloads = self.exchange({"values": dict(values)})
        out: dict[str, list[float]] = {}
        for p in payloads:
            for key, value in p["values"].items():
                out.setdefault(key, []).append(float(value))
        return {key: sum(vs) / len(vs) for key, vs in out.items()}

    def exchange(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every rank's ``payload``, in rank order: one ``all_gather`` of a fixed-size buffer
        (two when one rank's payload outgrew it; then the buffer stays bigger)."""
        import torch

        data = pickle.dumps(dict(payload), protocol=pickle.HIGHEST_PROTOCOL)
        device = self._device()
        while True:
            cap = self._capacity
            buf = torch.zeros(cap, dtype=torch.uint8)
            head = len(data).to_bytes(_HEADER, "little")
            if len(data) + _HEADER <= cap:
                buf[:_HEADER + len(data)] = torch.frombuffer(bytearray(head + data),
                                                             dtype=torch.uint8)
            else:
                buf[:_HEADER] = torch.frombuffer(bytearray(head), dtype=torch.uint8)
            sent = buf.to(device)
            out = [torch.empty_like(sent) for _ in range(self.world_size)]
            self._dist.all_gather(out, sent)
            rows = [o.cpu().numpy().tobytes() for o in out]
            sizes = [int.from_bytes(r[:_HEADER], "little") for r in rows]
            if max(sizes) + _HEADER <= cap:
                return [pickle.loads(r[_HEADER:_HEADER + n]) for r, n in zip(rows, sizes,
                                                                               strict=True)]
            self._capacity = 1 << (max(sizes) + _HEADER - 1).bit_length()

    def on_failure(self, error: str | None) -> str | None:
        """A loop of this rank ends failed or interrupted: no more collectives; the error to
        record (every failed rank's traceback, the earliest first; ``distributed_failure``)."""
        return failure_report(self.state, error)

    def install_sigterm(self) -> None:
        install_hooks(self.state)

    def _device(self) -> Any:
        import torch

        if self._dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
