"""The intact parts of a run: what the views read when a part of a store is damaged.

:func:`intact` checks every part of a run's store (each series, the events, the system
samples) against its checksum and gives a reader that leaves the damaged ones out, with the
list of what was left out (each a :class:`~loopwise.record.verify.DamagedRecordError` naming the
run, the file and the part; an image whose file fails its SHA-256 is left out of
:meth:`IntactReader.images`). ``loopwise show``, ``report``, ``doctor``, ``export`` and the
dashboard read through it: they say which part is damaged and still show the others.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from loopwise.record.folder import IMAGES_DIR
from loopwise.record.reader import Event, RunReader
from loopwise.record.verify import DamagedRecordError

if TYPE_CHECKING:
    from loopwise.record.media_read import ImageEntry

DAMAGED_EVENT = "record_damaged"


class IntactReader(RunReader):
    """A :class:`RunReader` of one run that leaves out the parts listed in ``damage``."""

    def __init__(self, reader: RunReader, damage: list[DamagedRecordError]) -> None:
        super().__init__(reader.path)
        self.damage = damage
        self._left_out = {d.part for d in damage}
        self._bad_images = {d.path.stem for d in damage if d.path.parent.name == IMAGES_DIR}

    def keys(self) -> list[str]:
        return [k for k in super().keys() if f"series {k!r}" not in self._left_out]

    def events(self, *, kind: str | None = None, level: str | None = None) -> list[Event]:
        return [] if "events" in self._left_out else super().events(kind=kind, level=level)

    def system(self, name: str | None = None) -> list[tuple[float, str, float]]:
        return [] if "system samples" in self._left_out else super().system(name)

    def images(self, name: str) -> list[ImageEntry]:
        return [e for e in super().images(name) if e.digest not in self._bad_images]


def intact(reader: RunReader, *, verified: set[tuple[int, int]] | None = None
           ) -> IntactReader:
    """A reader of ``reader``'s run without its damaged parts; ``.damage`` lists them.
    ``verified``: see :meth:`RunReader.damaged_parts` (a viewer polling a run keeps one per run)."""
    if not isinstance(reader, RunReader):
        raise TypeError(f"reader must be a RunReader, got {type(reader).__name__}")
    return IntactReader(reader, reader.damaged_parts(verified=verified))


def damage_events(damage: list[DamagedRecordError]) -> list[dict[str, Any]]:
    """One ``record_damaged`` error event (as the views' JSON) per damaged part."""
    now = time.time()
    return [{"time": now, "level": "error", "kind": DAMAGED_EVENT, "message": str(d),
             "step": None} for d in damage]
