"""The monitor's CSV log: ``timestamp, step, <metric running averages>..., RAM_pct, VRAM_gb``.

Rows are buffered and written at most every ``flush_interval`` seconds (default 1 s) and on
close. A metric first logged later gets its own column: the file is rewritten atomically with
the new header and the earlier rows padded with empty cells, so nothing is lost. An existing
file with a loopwise header is continued (appended to), so several monitors (one per epoch) can
share one ``log_file``.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from itertools import repeat
from pathlib import Path

from loopwise.record.atomic import atomic_write_text

LEAD = ["timestamp", "step"]
TAIL = ["RAM_pct", "VRAM_gb"]


def _fmt(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def iso_stamps(wall_times: Sequence[float]) -> list[str]:
    """ISO 8601 local times to the millisecond, as ``datetime.isoformat(timespec=
    "milliseconds")`` writes them; the date-and-second part is formatted once per second."""
    seconds: dict[int, str] = {}
    out = []
    for wall in wall_times:
        sec, micro = divmod(round(wall * 1_000_000), 1_000_000)
        head = seconds.get(sec)
        if head is None:
            head = seconds[sec] = datetime.fromtimestamp(sec).isoformat(timespec="seconds")
        out.append(f"{head}.{micro // 1000:03d}")
    return out


class CsvLog:
    """Append-only CSV with late columns; crash-safe rewrites, timed flushes."""

    def __init__(self, path: str | os.PathLike[str], *, flush_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"log_file must be a file path, got {type(path).__name__}")
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(
                f"log_file {str(self.path)!r} is a folder; give a file name such as train.csv")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            existing = self._read_header()
            self._fh = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise PermissionError(
                f"cannot write log_file {str(self.path)!r}: {exc.strerror or exc}; "
                "choose a path in a folder you can write to"
            ) from exc
        self.metrics: list[str] = existing
        self._header_written = bool(existing) or self.path.stat().st_size > 0
        self._rows: list[Sequence[object]] = []
        self._new_columns = False
        self._clock = clock
        self._flush_interval = flush_interval
        self._last_flush = clock()

    def _read_header(self) -> list[str]:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return []
        with open(self.path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
        if header[:2] != LEAD or header[-2:] != TAIL:
            raise ValueError(
                f"log_file {str(self.path)!r} exists and is not a loopwise CSV "
                f"(header {header[:4]}...); choose another path or delete it"
            )
        return header[2:-2]

    @property
    def columns(self) -> list[str]:
        return [*LEAD, *self.metrics, *TAIL]

    def add(self, wall_time: float, step: int, averages: dict[str, float],
            ram_pct: float, vram_gb: float) -> None:
        """Buffer one row of running averages."""
        for key in averages:
            if key not in self.metrics:
                self.metrics.append(key)
                self._new_columns = True
        row = [iso_stamps((wall_time,))[0], str(step)]
        row.extend(_fmt(averages.get(k)) for k in self.metrics)
        row.extend((_fmt(ram_pct), _fmt(vram_gb)))
        self._rows.append(row)

    def add_rows(self, wall_times: Sequence[float], steps: Sequence[int],
                 averages: Mapping[str, Sequence[float] | float], ram_pct: float,
                 vram_gb: float) -> None:
        """Buffer one row per step: ``averages[key]`` is a column (one running average per
        row) or one number for every row (a metric not logged in these steps)."""
        for key in averages:
            if key not in self.metrics:
                self.metrics.append(key)
                self._new_columns = True
        n = len(steps)
        cells = [averages.get(k, "") for k in self.metrics]
        columns = [c if isinstance(c, Sequence) and not isinstance(c, str) else repeat(c, n)
                   for c in cells]
        self._rows.extend(zip(iso_stamps(wall_times), steps, *columns, repeat(_fmt(ram_pct), n),
                              repeat(_fmt(vram_gb), n), strict=True))

    def maybe_flush(self) -> None:
        if self._clock() - self._last_flush >= self._flush_interval:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows (rewriting the file when columns were added)."""
        self._last_flush = self._clock()
        if self._new_columns and self._header_written:
            self._rewrite()
        elif self._rows or not self._header_written:
            writer = csv.writer(self._fh)
            if not self._header_written:
                writer.writerow(self.columns)
                self._header_written = True
            writer.writerows(self._pad(self._rows))
            self._rows = []
            self._fh.flush()
        self._new_columns = False

    def _pad(self, rows: Sequence[Sequence[object]]) -> list[Sequence[object]]:
        width = len(self.columns)
        out: list[Sequence[object]] = []
        for row in rows:
            if len(row) < width:  # a row written before later metrics appeared in this batch
                n_metrics = len(row) - len(LEAD) - len(TAIL)
                row = [*row[: len(LEAD) + n_metrics], *[""] * (width - len(row)),
                       *row[len(LEAD) + n_metrics:]]
            out.append(row)
        return out

    def _rewrite(self) -> None:
        self._fh.close()
        with open(self.path, newline="", encoding="utf-8") as fh:
            old = list(csv.reader(fh))
        old_header, old_rows = (old[0], old[1:]) if old else (self.columns, [])
        old_metrics = old_header[2:-2]
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(self.columns)
        for row in old_rows:
            values = dict(zip(old_metrics, row[2:-2], strict=False))
            writer.writerow([*row[:2], *(values.get(k, "") for k in self.metrics), *row[-2:]])
        writer.writerows(self._pad(self._rows))
        self._rows = []
        atomic_write_text(self.path, buf.getvalue())
        self._fh = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        if self._fh.closed:
            return
        self.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
