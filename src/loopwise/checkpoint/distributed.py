"""Checkpoints under ``torchrun``: rank 0 writes, every rank loads, the data position comes back.

```python
from loopwise.checkpoint.distributed import load_checkpoint, save_checkpoint

save_checkpoint(path, {"model": model.module.state_dict(), "optimizer": opt.state_dict(),
                       "monitor": monitor.state_dict()}, sampler=sampler, batches_done=i)
state = load_checkpoint(path, sampler=sampler)       # every rank; sampler.set_epoch() done
for batch in skip_batches(loader, state["distributed"]["batches_done"]): ...
```

:func:`save_checkpoint` is called on every rank: rank 0 writes the file through the checkpoint
store every other checkpoint goes through (:class:`~loopwise.checkpoint.named.NamedFiles`:
``torch.save`` streamed into a temp file and hashed as it is written, fsync, ``os.replace``, the
hash listed in the folder's ``manifest.json``), then all ranks meet at a barrier, so no rank
goes on (or is killed) before the file is whole. :func:`load_checkpoint` verifies it against
that manifest (as ``load_state_dict_safely`` and the ``CheckpointManager`` do: a changed byte
is a :class:`~loopwise.checkpoint.errors.CorruptCheckpointError` naming the file) and checks
that the world size is the one the checkpoint was saved under: another world size changes which
samples each rank sees, so it is an error unless ``allow_reshard=True`` (then the sampler's
epoch is restored and the position within the epoch is dropped: the epoch starts again under
the new sharding).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from loopwise.checkpoint.named import NamedFiles, verify_if_listed
from loopwise.checkpoint.store import load_file
from loopwise.utils.validate import check_bool, check_count

KEY = "distributed"


def _group() -> tuple[int, int, Any]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), dist
    return 0, 1, None


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any], *,
                    sampler: Any = None, batches_done: int = 0, step: int = 0) -> Path:
    """Write ``state`` (plus the group's world size, the sampler's epoch and ``batches_done``
    of that epoch) to ``path`` on rank 0; every rank returns once it is written. ``step``
    (the global step) is recorded beside the file's hash in the folder's ``manifest.json``."""
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a mapping (e.g. {{'model': model.state_dict()}}), got "
                        f"{type(state).__name__}")
    batches_done = check_count(batches_done, what="batches_done",
                               hint="batches of the current epoch already trained")
    step = check_count(step, what="step", hint="the global step")
    if KEY in state:
        raise ValueError(f"state must not hold the key {KEY!r}: save_checkpoint adds it")
    rank, world, dist = _group()
    target = Path(path)
    if rank == 0:
        full = dict(state)
        full[KEY] = {"world_size": world, "batches_done": batches_done,
                     "sampler_epoch": None if sampler is None else int(sampler.epoch)}
        target.parent.mkdir(parents=True, exist_ok=True)
        NamedFiles(target.parent).save({target.name: full}, step=step)
    if dist is not None:
        dist.barrier()
    return target


def load_checkpoint(path: str | os.PathLike[str], *, sampler: Any = None,
                    map_location: Any = "cpu", allow_reshard: bool = False,
                    allow_pickle: bool = False) -> dict[str, Any]:
    """Load ``path`` on this rank; restore ``sampler``'s epoch. A checkpoint saved under
    another world size is an error unless ``allow_reshard`` (then ``batches_done`` is 0).
    The file is checked against the hash in the ``manifest.json`` beside it first (a file
    whose bytes changed is refused, naming it). Loaded as the checkpoint store loads
    (``weights_only=True``): a file holding pickled Python objects is refused unless
    ``allow_pickle=True`` (which warns: a pickle can run code)."""
    for flag, value in (("allow_reshard", allow_reshard), ("allow_pickle", allow_pickle)):
        check_bool(value, what=flag)
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no checkpoint at {source}; save one with save_checkpoint() "
                                "or start without resuming")
    verify_if_listed(source)  # the hash save_checkpoint listed: a changed byte is refused
    loaded: Any = load_file(source, map_location=map_location, allow_pickle=allow_pickle)
    state: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
    info = state.get(KEY)
    if not isinstance(info, dict):
        raise ValueError(f"{source} was not written by save_checkpoint (no {KEY!r} entry); "
                         "load it with torch.load")
    if check_world_size(int(info["world_size"]), source=source, allow_reshard=allow_reshard):
        info = dict(info, batches_done=0)
        state[KEY] = info
    if sampler is not None and info.get("sampler_epoch") is not None:
        sampler.set_epoch(int(info["sampler_epoch"]))
    return state


def check_world_size(saved: int, *, source: object, allow_reshard: bool,
                     world: int | None = None) -> bool:
    """The one check of a resume's world size (``load_checkpoint``, ``fit``, ``Workflow``):
    False when ``saved`` (the world size ``source`` was written under) is this group's; True
    when it differs and ``allow_reshard`` (the caller restarts the saved epoch under the new
    sharding); a clear error otherwise. ``world``: this run's world size (the group's)."""
    check_bool(allow_reshard, what="allow_reshard")
    if world is None:
        _, world, _ = _group()
    if saved == world:
        return False
    if not allow_reshard:
        raise ValueError(
            f"{source} was saved by {saved} process{'es' if saved != 1 else ''} and this run "
            f"has {world}: each rank "
            f"would see other samples than before, so the resume would not be exact; "
            f"launch with --nproc_per_node/--nnodes giving {saved} processes, or pass "
            f"allow_reshard=True to restart the saved epoch under the new sharding")
    return True


def skip_batches(loader: Iterable[Any], n: int) -> Iterator[Any]:
    """``loader``'s batches after the first ``n`` (those a resumed epoch already trained)."""
    n = check_count(n, what="n", hint="batches to skip")
    return itertools.islice(iter(loader), n, None)
