"""The one way a resumed epoch skips the batches already trained on, for fit and Workflow: the
skip happens in the sampler, so no skipped sample is ever loaded.

``skip_batches(loader, n)`` gives an iterable that starts at batch ``n`` of the pass ``loader``
would make now, and a ``start()`` to call right after ``iter()``:

* a ``ResumableSampler`` (Workflow's ``checkpoint_every``) is told to start its next pass at
  sample ``n * batch_size``; its order depends on ``(seed, epoch)`` only;
* any other map-style ``DataLoader`` (``shuffle=True`` included) is rebuilt around a
  :class:`SkippingBatchSampler`: the same dataset, collate function, workers and generator, and
  its own batch sampler, from which the first ``n`` index lists are drawn and dropped. The
  generators are used exactly as in an uninterrupted pass (the iterator's base seed, then the
  sampler's seed), so the pass continues bit-identically once the caller restores the RNG
  state of the checkpoint, after ``start()``.

An ``IterableDataset`` has no sampler: its first ``n`` batches are read and dropped (the only
way to reach the same position).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

from torch.utils.data import DataLoader, IterableDataset

from loopwise.distributed.sampler import ResumableSampler
from loopwise.utils.validate import check_count

__all__ = ["SkippingBatchSampler", "loader_options", "skip_batches"]


class SkippingBatchSampler:
    """The index lists of ``inner`` (a batch sampler or sampler) from number ``skip`` on. The
    pass starts at the first ``next()`` or at :meth:`start`, whichever comes first; one pass."""

    def __init__(self, inner: Iterable[Any], skip: int) -> None:
        skip = check_count(skip, what="batches to skip")
        self.inner = inner
        self.skip = skip
        self._it: Iterator[Any] | None = None

    def __len__(self) -> int:
        if not isinstance(self.inner, Sized):
            raise TypeError("the wrapped sampler has no len()")
        return max(len(self.inner) - self.skip, 0)

    def __iter__(self) -> Iterator[Any]:
        return self

    def start(self) -> None:
        """Begin the pass: draw and drop the first ``skip`` index lists (nothing is loaded)."""
        if self._it is None:
            it = iter(self.inner)
            for _ in range(self.skip):
                if next(it, None) is None:
                    break
            self._it = it

    def __next__(self) -> Any:
        self.start()
        assert self._it is not None
        return next(self._it)


def _nothing() -> None:
    return None


def skip_batches(loader: Iterable[Any], batches: int
                 ) -> tuple[Iterable[Any], Callable[[], None]]:
    """An iterable over ``loader``'s next pass from batch ``batches`` on, and the ``start()``
    to call right after ``iter()`` on it (see the module doc)."""
    batches = check_count(batches, what="batches to skip")
    if batches == 0:
        return loader, _nothing
    if isinstance(loader, DataLoader) and not isinstance(loader.dataset, IterableDataset):
        sampler = loader.sampler if loader.batch_sampler is None else loader.batch_sampler
        inner = getattr(sampler, "sampler", sampler)
        if isinstance(inner, ResumableSampler) and loader.batch_size:
            inner.skip_next(batches * loader.batch_size)
            return loader, _nothing
        skipping = SkippingBatchSampler(sampler, batches)
        return _rebuild(loader, skipping), skipping.start
    return _Dropping(loader, batches), _nothing


def loader_options(loader: DataLoader[Any]) -> dict[str, Any]:
    """The options of ``loader`` a rebuilt loader over the same dataset keeps (workers,
    collate function, pinning, generator...): everything but its sampling."""
    options: dict[str, Any] = {
        "num_workers": loader.num_workers, "collate_fn": loader.collate_fn,
        "pin_memory": loader.pin_memory, "timeout": loader.timeout,
        "worker_init_fn": loader.worker_init_fn, "generator": loader.generator,
        "pin_memory_device": loader.pin_memory_device,
    }
    if loader.num_workers > 0:
        options.update(multiprocessing_context=loader.multiprocessing_context,
                       prefetch_factor=loader.prefetch_factor)
    return options


def _rebuild(loader: DataLoader[Any], skipping: SkippingBatchSampler) -> DataLoader[Any]:
    """``loader`` with ``skipping`` in place of its (batch) sampler."""
    options = loader_options(loader)
    if loader.batch_sampler is None:  # batch_size=None: the sampler yields single indices
        return DataLoader(loader.dataset, batch_size=None,
                          sampler=skipping,
                          **options)
    return DataLoader(loader.dataset, batch_sampler=skipping,
                      **options)


class _Dropping:
    """An iterable-style loader's pass from batch ``skip`` on (the skipped batches are read)."""

    def __init__(self, loader: Iterable[Any], skip: int) -> None:
        self.loader = loader
        self.skip = skip

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.loader)
        for _ in range(self.skip):
            if next(it, None) is None:
                break
        return it
