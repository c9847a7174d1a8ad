"""The run's epoch bookkeeping: the last epoch that ended, and one summary point per epoch and
name (an epoch recorded before a resume is not recorded again; docs/record.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from loopwise.record.series import Series


class EpochSeries(Protocol):
    """What the ledger reads of a run folder (a :class:`~loopwise.record.reader.RunReader`)."""

    def keys(self) -> list[str]: ...

    def series(self, key: str) -> Series: ...

    def last_step(self) -> int: ...


class EpochLedger:
    """What ``Run.log_epoch`` has recorded: ``epoch`` (the last that ended) and, per summary
    series ``epoch/<name>``, the last epoch it holds."""

    def __init__(self, epoch: int = 0, recorded: Mapping[str, int] | None = None) -> None:
        self.epoch = epoch
        self._keys = dict(recorded or {})
        self._mark: tuple[int, int] | None = None

    def row(self, epoch: int, step: int, values: Mapping[str, float]) -> dict[str, float]:
        """The points to record for ``epoch``'s ``values`` ending at ``step``: ``epoch/<name>``
        for each name not yet recorded for that epoch, plus the ``epoch`` series once per
        (epoch, step), and never for an epoch the folder held when the run was reopened; empty
        when there is nothing new."""
        row = {f"epoch/{k}": v for k, v in values.items()
               if self._keys.get(f"epoch/{k}", 0) < epoch}
        self.epoch = max(self.epoch, epoch)  # ended, though recorded before a resume
        if not row:
            return row
        for key in row:
            self._keys[key] = epoch
        if self._mark != (epoch, step) and self._keys.get("epoch", 0) < epoch:  # not before
            row["epoch"] = float(epoch)  # a resume either
            self._mark = (epoch, step)
        return row

    @classmethod
    def of_record(cls, reader: EpochSeries, epoch: int) -> tuple[EpochLedger, int]:
        """The ledger of an existing run folder (a resumed run), read through its ``reader``
        (a :class:`~loopwise.record.reader.RunReader`), and the last step it holds.
        ``epoch`` (from ``run.json``) may lag the record after a crash: the record wins."""
        recorded: dict[str, int] = {}
        for key in reader.keys():
            if key.startswith("epoch/") or key == "epoch":
                series = reader.series(key)
                if len(series):
                    recorded[key] = int(max(series.values if key == "epoch" else series.epochs))
        return cls(max([epoch, *recorded.values()]), recorded), reader.last_step()
