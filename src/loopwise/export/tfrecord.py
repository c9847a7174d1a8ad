"""TFRecord framing for TensorBoard event files, built for many records at once with NumPy.

A record is ``len (uint64) | masked crc32c(len) | data | masked crc32c(data)``. TensorBoard's
writer computes CRC-32C one byte at a time in Python when TensorFlow is absent (~10 us per scalar
event). Here records of equal length are checksummed together, two bytes per table lookup (a
65,536-entry table) over all of them at once, so a batch of thousands of events costs a few
dozen array operations.

:func:`scalar_records` writes the scalar events of whole columns the same way: each series'
``Summary.Value`` bytes are built once, then every event's bytes (wall time, step, the values)
are laid into one buffer with array operations; no message, and no Python work, per point.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from typing import Any

from loopwise.record.recorder import ColumnData

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected
_MASK_DELTA = 0xA282EAD8
BLOCK = 50_000  # points built at once at most (larger arrays leave the caches: slower)


def _tables() -> tuple[Any, Any]:
    """CRC-32C lookup tables: one byte at a time (256 entries), two at a time (65,536)."""
    import numpy as np

    t8 = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t8 = np.where(t8 & 1, (t8 >> 1) ^ np.uint32(_POLY), t8 >> 1).astype(np.uint32)
    i = np.arange(65536, dtype=np.uint32)
    c = t8[i & 0xFF] ^ (i >> 8)  # two byte steps on crc = i with zero data (linearity)
    t16 = t8[c & 0xFF] ^ (c >> 8)
    return t8, t16


class _Crc:
    """Masked CRC-32C of the rows of a byte matrix (all rows of one length)."""

    def __init__(self) -> None:
        self.t8, self.t16 = _tables()

    def masked(self, rows: Any) -> Any:
        """``rows``: an ``(n, length)`` uint8 array; returns the n masked CRCs (uint32)."""
        return self.masked_at(rows.reshape(-1), rows.shape[1] * _arange(rows.shape[0]),
                              rows.shape[1])

    def masked_at(self, buf: Any, starts: Any, length: int) -> Any:
        """The masked CRCs of the ``length`` bytes of ``buf`` (uint8) at each of ``starts``,
        read one byte position at a time (no index of n x length)."""
        import numpy as np

        crc = np.full(len(starts), 0xFFFFFFFF, dtype=np.uint32)
        t8, t16 = self.t8, self.t16
        for j in range(0, length - 1, 2):
            word = buf[starts + j].astype(np.uint32) | (buf[starts + j + 1].astype(np.uint32)
                                                        << 8)
            crc = t16[(crc ^ word) & 0xFFFF] ^ (crc >> 16)
        if length % 2:
            crc = t8[(crc ^ buf[starts + length - 1]) & 0xFF] ^ (crc >> 8)
        crc ^= np.uint32(0xFFFFFFFF)
        return (((crc >> 15) | (crc << 17)) + np.uint32(_MASK_DELTA)).astype(np.uint32)


def _arange(n: int) -> Any:
    import numpy as np

    return np.arange(n, dtype=np.int64)


class RecordFramer:
    """Frames serialized events as TFRecords (``frame(blobs) -> bytes``), and the scalar
    events of whole columns (``scalars(series) -> bytes``)."""

    def __init__(self) -> None:
        self._crc = _Crc()

    def masked_crcs(self, blobs: Sequence[bytes]) -> list[int]:
        """The masked CRC-32C of each blob (TFRecord's checksum)."""
        import numpy as np

        out = np.zeros(len(blobs), dtype=np.uint32)
        by_len: dict[int, list[int]] = {}
        for i, blob in enumerate(blobs):
            by_len.setdefault(len(blob), []).append(i)
        for length, idx in by_len.items():
            rows = np.frombuffer(b"".join(blobs[i] for i in idx), dtype=np.uint8)
            out[np.asarray(idx)] = self._crc.masked(rows.reshape(len(idx), length))
        return [int(x) for x in out]

    def frame(self, blobs: Sequence[bytes]) -> bytes:
        """The TFRecord bytes of ``blobs``, in order."""
        headers = [struct.pack("<Q", len(b)) for b in blobs]
        crcs = self.masked_crcs([*headers, *blobs])
        n = len(blobs)
        parts: list[bytes] = []
        pack = struct.Struct("<I").pack
        for i, blob in enumerate(blobs):
            parts += (headers[i], pack(crcs[i]), blob, pack(crcs[n + i]))
        return b"".join(parts)

    def scalars(self, series: Sequence[tuple[bytes, ColumnData]]) -> bytes:
        """The framed events of ``series``, ``(scalar_prefix(tag), (steps, times, values))``
        each: one event per (step, wall time), holding every value logged at it (series
        order), events sorted by step then time. The same bytes as :func:`scalar_event` per
        event, framed by :meth:`frame`."""
        import numpy as np

        cols = [c for _, c in series]
        counts = np.array([len(c[0]) for c in cols], dtype=np.int64)
        n = int(counts.sum())
        if n == 0:
            return b""
        steps = np.concatenate([np.asarray(c[0], dtype=np.int64) for c in cols])
        times = np.concatenate([np.asarray(c[1], dtype=np.float64) for c in cols])
        with np.errstate(over="ignore"):  # beyond float32: an infinity, as TensorBoard shows
            values = np.concatenate([np.asarray(c[2], dtype=np.float64) for c in cols]
                                    ).astype("<f4")
        kid = np.repeat(np.arange(len(cols), dtype=np.int64), counts)
        if n > 1:
            a, b = steps[:-1], steps[1:]
            if not bool(np.all((b > a) | ((b == a) & (times[1:] >= times[:-1])))):
                order = np.lexsort((times, steps))  # stable: a group keeps the series order
                steps, times, values, kid = steps[order], times[order], values[order], kid[order]
        entries = [b"\x0a" + varint(len(p) + 4) + p for p, _ in series]  # Summary.Value head
        new = np.ones(n, dtype=bool)
        new[1:] = (steps[1:] != steps[:-1]) | (times[1:] != times[:-1])
        starts = np.flatnonzero(new)
        # blocks of whole events, ~BLOCK points each: arrays that stay in the CPU's caches
        first = np.searchsorted(starts, np.arange(BLOCK, n, BLOCK))
        cuts = {int(c) for c in starts[first[first < len(starts)]]} - {0}
        bounds = [0, *sorted(cuts), n]
        return b"".join(self._events(entries, steps[i:j], times[i:j], values[i:j], kid[i:j],
                                     new[i:j])
                        for i, j in itertools.pairwise(bounds))

    def _events(self, entries: list[bytes], steps: Any, times: Any, values: Any, kid: Any,
                new: Any) -> bytes:
        """The framed events of sorted points (``new``: where an event starts)."""
        import numpy as np

        esize = np.array([len(e) + 4 for e in entries], dtype=np.int64)
        starts = np.flatnonzero(new)
        member_size = esize[kid]
        summary = np.add.reduceat(member_size, starts)
        ustep = steps[starts].view(np.uint64)  # a negative step: its 64-bit two's complement
        lstep, lsum = _varint_len(ustep), _varint_len(summary.astype(np.uint64))
        data_len = 11 + lstep + lsum + summary  # 09 time(8) 10 step 2a len summary
        rec_len = data_len + 16
        rec_off = np.zeros(len(starts), dtype=np.int64)
        np.cumsum(rec_len[:-1], out=rec_off[1:])
        out = np.zeros(int(rec_off[-1] + rec_len[-1]), dtype=np.uint8)
        _put(out, rec_off, data_len.astype("<u8").view(np.uint8).reshape(-1, 8))
        data = rec_off + 12
        out[data] = 0x09
        _put(out, data + 1, times[starts].astype("<f8").view(np.uint8).reshape(-1, 8))
        out[data + 9] = 0x10
        _put_varint(out, data + 10, ustep, lstep)
        out[data + 10 + lstep] = 0x2A
        _put_varint(out, data + 11 + lstep, summary.astype(np.uint64), lsum)
        # each value's place: its event's summary start + the sizes of the values before it
        before = np.cumsum(member_size) - member_size
        group = np.cumsum(new) - 1
        at = (data + 11 + lstep + lsum)[group] + before - before[starts][group]
        by_key = np.argsort(kid, kind="stable")
        ends = np.searchsorted(kid[by_key], np.arange(len(entries) + 1))
        for k, entry in enumerate(entries):
            mine = at[by_key[ends[k]:ends[k + 1]]]
            for j, byte in enumerate(entry):  # the value's tag: the same bytes every time
                out[mine + j] = byte
        _put(out, at + esize[kid] - 4, values.view(np.uint8).reshape(-1, 4))
        # checksums: of each 8-byte length (few distinct), then of each event's bytes
        lengths, inverse = np.unique(data_len, return_inverse=True)
        head = self._crc.masked(lengths.astype("<u8").view(np.uint8).reshape(-1, 8))
        _put(out, rec_off + 8, head[inverse].astype("<u4").view(np.uint8).reshape(-1, 4))
        for length in lengths:
            idx = np.flatnonzero(data_len == length)
            crc = self._crc.masked_at(out, data[idx], int(length))
            crc = crc.astype("<u4").view(np.uint8).reshape(-1, 4)
            _put(out, data[idx] + int(length), crc)
        return out.tobytes()


def _varint_len(x: Any) -> Any:
    """Bytes of the protobuf varint of each uint64 in ``x`` (int64 array)."""
    import numpy as np

    n = np.ones(len(x), dtype=np.int64)
    for b in range(1, 10):
        n += x >= np.uint64(1 << (7 * b))
    return n


def _put(out: Any, at: Any, columns: Any) -> None:
    """``out[at[i] + j] = columns[i, j]``: one scatter per column."""
    for j in range(columns.shape[1]):
        out[at + j] = columns[:, j]


def _put_varint(out: Any, at: Any, x: Any, lengths: Any) -> None:
    """The varint of each ``x`` (uint64) at ``at``, ``lengths`` bytes each."""
    import numpy as np

    for b in range(int(lengths.max())):
        has = lengths > b
        part = ((x[has] >> np.uint64(7 * b)) & np.uint64(0x7F)).astype(np.uint8)
        part[lengths[has] > b + 1] |= 0x80
        out[at[has] + b] = part


def varint(n: int) -> bytes:
    """Protobuf varint of a non-negative int (a negative one as its 64-bit two's complement)."""
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def scalar_prefix(tag: str) -> bytes:
    """The encoded start of a ``Summary.Value`` for ``tag`` (field 1, the tag string)."""
    raw = tag.encode("utf-8")
    return b"\x0a" + varint(len(raw)) + raw + b"\x15"


_F32 = struct.Struct("<f").pack
_F64 = struct.Struct("<d").pack


def _f32(value: float) -> bytes:
    try:
        return _F32(value)
    except OverflowError:  # beyond float32: what TensorBoard would show, an infinity
        return _F32(float("inf") if value > 0 else float("-inf"))


def scalar_event(wall_time: float, step: int, values: Sequence[tuple[bytes, float]]) -> bytes:
    """A serialized ``Event`` holding a ``Summary`` of simple values: ``values`` are
    ``(scalar_prefix(tag), value)``. Same bytes a protobuf ``Event`` would parse from, built
    without making a message per value."""
    summary = b"".join(b"\x0a" + varint(len(p) + 4) + p + _f32(v) for p, v in values)
    return (b"\x09" + _F64(wall_time) + b"\x10" + varint(step) + b"\x2a"
            + varint(len(summary)) + summary)
