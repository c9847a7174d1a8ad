"""The delivery process of an exporter (``loopwise.export.child``): what it delivers from a run's
record when a part of it is damaged."""

from __future__ import annotations

import io
import os
import struct

from _export_servers import need

from loopwise.export import wire
from loopwise.export.child import Mirror
from loopwise.export.tensorboard import TensorBoardExporter
from loopwise.record import Run
from loopwise.record.follow import Cursor

need("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def test_a_damaged_series_is_not_delivered_and_the_run_is_told_which(tmp_path):
    with Run.create(tmp_path / "runs", "d") as run:
        for step in range(1, 101):
            run.log_scalars({"loss": 1.0 / step, "acc": step / 100}, step=step)
    store = run.path / "store.sqlite"
    data = bytearray(store.read_bytes())
    data[data.find(struct.pack("<d", 1.0 / 7)) + 1] ^= 0x02
    store.write_bytes(bytes(data))
    exporter = TensorBoardExporter(tmp_path / "tb")
    args, kwargs = exporter.init_args
    out = io.BytesIO()
    mirror = Mirror({"exporter": (type(exporter).__module__, type(exporter).__qualname__),
                     "args": args, "kwargs": {**kwargs, "delivery": "thread"},
                     "run_path": str(run.path), "info": {"status": "finished"},
                     "cursor": Cursor().state_dict(), "state": exporter.state_dict(),
                     "parent_pid": os.getppid()}, out)
    mirror.finish("finished", None)
    out.seek(0)
    messages = []
    while (message := wire.receive(out)) is not None:
        messages.append(message)
    said = [m for m in messages if m[:2] == ("event", "exporter_damaged")]
    assert len(said) == 1 and said[0][2] == (
        f"TensorBoardExporter did not deliver series 'loss': {store} is corrupt (run 'd': "
        f"series 'loss' failed its checksum); its bytes changed after they were written (a "
        f"disk error, or an edit); the run's other series still read; restore the file from a "
        f"backup to get it back")
    assert said[0][3] == "error" and said[0][4]["part"] == "series 'loss'"
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    assert "loss" not in acc.Tags()["scalars"] and len(acc.Scalars("acc")) == 100
    assert "events/record_damaged" in acc.Tags()["tensors"]  # the mirror says it too
    assert mirror.exporter.stats().undelivered == 0  # left out and said, not "undelivered"
