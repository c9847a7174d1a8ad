"""PNG in the record: reading an image's size from its header, and encoding an 8-bit
HxWx{1,3,4} array (standard library ``zlib``; no imaging library needed)."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MODES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


def png_size(data: bytes, *, what: str) -> tuple[int, int]:
    """``(width, height)`` of the PNG ``data``; anything else is a ValueError naming ``what``."""
    if len(data) < 33 or data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError(f"{what} is not a PNG image (it does not start with the PNG signature "
                         "and header); give PNG bytes, a .png file, an HxWx{1,3,4} uint8 array "
                         "or a matplotlib figure")
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        raise ValueError(f"{what} is a PNG of size {width}x{height}; an image needs pixels")
    return int(width), int(height)


def check_pixels(pixels: Any, *, what: str) -> Any:
    """An HxWx{1,3,4} (or HxW) uint8 NumPy array, else a clear error."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        raise TypeError(f"{what} is an array of dtype {arr.dtype}; give uint8 pixels (0..255), "
                        "e.g. (x * 255).clip(0, 255).astype('uint8')")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in _MODES or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what} has shape {tuple(np.asarray(pixels).shape)}; give an "
                         "HxWx1, HxWx3 or HxWx4 array (height, width, channels last)")
    return arr


def encode_png(pixels: Any) -> bytes:
    """PNG bytes of an HxWx{1,3,4} uint8 array (checked by :func:`check_pixels`)."""
    arr = np.ascontiguousarray(pixels)
    height, width, channels = arr.shape
    rows = np.zeros((height, width * channels + 1), dtype=np.uint8)  # filter byte 0 per row
    rows[:, 1:] = arr.reshape(height, width * channels)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, _MODES[channels], 0, 0, 0)
    return (SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))
