"""Histograms, images and text in the run record: what Run takes, what RunReader gives back,
the image budget, what exporters are handed, and the messages for bad arguments."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
import torch

from loopwise.record import Run, RunReader
from loopwise.record.histogram import Histogram
from loopwise.record.png import encode_png
from loopwise.watch.monitor import TrainingMonitor

matplotlib.use("Agg")


def test_histograms_images_and_text_round_trip_at_their_steps(tmp_path: Path) -> None:
    with Run.create(tmp_path, "a") as run:
        run.advance(7)
        weights = torch.randn(1000, requires_grad=True)
        run.log_histogram("weights/w", weights)  # at the global step
        run.log_histogram("weights/w", np.arange(100.0), step=20, bins=10)
        run.log_image("pred", np.full((4, 6, 3), 200, np.uint8))
        run.log_text("notes", "lr 0.1 | acc 0.93", step=3)
    reader = RunReader(run.path)
    assert reader.histogram_names() == ["weights/w"]
    assert reader.image_names() == ["pred"] and reader.text_names() == ["notes"]
    first, second = reader.histograms("weights/w")
    assert (first.step, first.histogram.bins, first.histogram.total) == (7, 64, 1000)
    assert first.histogram.sum == pytest.approx(float(weights.detach().sum()), rel=1e-5)
    assert second.step == 20 and second.histogram.counts == (10,) * 10
    assert second.histogram.edges()[0] == 0.0 and second.histogram.edges()[-1] == 99.0
    (image,) = reader.images("pred")
    assert (image.step, image.width, image.height) == (7, 6, 4)
    assert image.path.read_bytes() == encode_png(np.full((4, 6, 3), 200, np.uint8))
    assert image.path.parent == run.path / "images" and image.path.stem == image.digest
    assert [(t.step, t.text) for t in reader.texts("notes")] == [(3, "lr 0.1 | acc 0.93")]
    assert reader.keys() == []  # none of it is a scalar series


def test_a_64_bin_histogram_takes_under_1_kib_of_store(tmp_path: Path) -> None:
    values = np.random.default_rng(0).normal(size=5000)
    with Run.create(tmp_path, "empty"):
        pass
    base = (tmp_path / "empty/store.sqlite").stat().st_size
    with Run.create(tmp_path, "a") as run:
        for step in range(2000):
            run.log_histogram(f"layer{step % 10}.weight", values, step=step)
    size = (run.path / "store.sqlite").stat().st_size - base
    assert len(RunReader(run.path).histograms("layer3.weight")) == 200
    assert size / 2000 <= 1024, f"{size / 2000:.0f} bytes per histogram"


def test_every_image_form_is_stored_once_per_content(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    pixels = np.random.default_rng(0).integers(0, 255, (8, 5, 4), dtype=np.uint8)
    png = encode_png(pixels)
    (tmp_path / "in.png").write_bytes(png)
    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([1, 2, 3])
    with Run.create(tmp_path, "a") as run:
        run.log_image("x", tmp_path / "in.png", step=1)
        run.log_image("x", str(tmp_path / "in.png"), step=2)
        run.log_image("x", png, step=3)
        run.log_image("x", pixels, step=4)
        run.log_image("x", torch.from_numpy(pixels), step=5)
        run.log_image("grey", np.zeros((3, 3), np.uint8), step=1)
        run.log_image("grey1", np.zeros((3, 3, 1), np.uint8), step=1)
        run.log_image("fig", fig, step=1)
    plt.close(fig)
    reader = RunReader(run.path)
    entries = reader.images("x")
    assert [e.step for e in entries] == [1, 2, 3, 4, 5]
    assert len({e.digest for e in entries}) == 1 and entries[0].path.read_bytes() == png
    (figure,) = reader.images("fig")
    assert (figure.width, figure.height) == (100, 75)
    assert len(list((run.path / "images").iterdir())) == 3  # x, the grey square, the figure


def test_the_image_budget_drops_what_is_past_it_with_one_clear_event(tmp_path: Path) -> None:
    with Run.create(tmp_path, "a", max_images=2) as run:
        for step in range(5):
            run.log_image("x", np.full((2, 2, 3), step, np.uint8), step=step)
        run.flush()
        assert run.dropped_images == 3
    reader = RunReader(run.path)
    assert [e.step for e in reader.images("x")] == [0, 1]
    (event,) = reader.events(kind="image_budget_reached")
    assert event.level == "warning"
    assert event.message.startswith("image 'x' at step 2 was not recorded: the run holds 2 "
                                    "images (0.0 MiB), its budget is 2 images and 256 MiB")
    assert "Run.create(max_images=..., max_image_mib=...)" in event.message
    with Run.reopen(run.path, max_images=3) as again:  # the budget counts what is there
        again.log_image("x", np.full((2, 2, 3), 9, np.uint8), step=9)
        again.log_image("x", np.full((2, 2, 3), 10, np.uint8), step=10)
    assert [e.step for e in RunReader(run.path).images("x")] == [0, 1, 9]


def test_the_mib_budget_counts_stored_bytes(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    with Run.create(tmp_path, "a", max_image_mib=0.4) as run:
        run.log_image("x", noise, step=1)  # ~270 KB: fits
        run.log_image("x", noise, step=2)  # the same content: no new bytes
        run.log_image("x", noise[::-1], step=3)  # another 270 KB: past 0.4 MiB
    assert [e.step for e in RunReader(run.path).images("x")] == [1, 2]
    assert RunReader(run.path).events(kind="image_budget_reached")


class Kept:
    """An exporter keeping what the run hands it (a Recorder, in memory)."""

    def __init__(self) -> None:
        self.media: list[tuple[str, str, Any, int | None]] = []

    def log_scalars(self, values: Any, *, step: int, wall_time: float | None = None) -> None:
        pass

    def log_columns(self, columns: Any) -> None:
        pass

    def log_epoch(self, epoch: int, values: Any, *, step: int | None = None) -> None:
        pass

    def log_event(self, kind: str, message: str, *, level: str = "info", data: Any = None
                  ) -> None:
        pass

    def log_system(self, values: Any, *, wall_time: float | None = None) -> None:
        pass

    def log_histogram(self, name: str, values: Any, *, step: int | None = None,
                      bins: int = 64) -> None:
        self.media.append(("histogram", name, values, step))

    def log_image(self, name: str, image: Any, *, step: int | None = None) -> None:
        self.media.append(("image", name, image, step))

    def log_text(self, name: str, text: str, *, step: int | None = None) -> None:
        self.media.append(("text", name, text, step))

    def set_config(self, config: Any) -> None:
        pass

    def close(self, status: str = "finished", *, error: str | None = None) -> None:
        pass


def test_exporters_are_handed_the_binned_histogram_the_image_file_and_the_text(
        tmp_path: Path) -> None:
    kept = Kept()
    with Run.create(tmp_path, "a") as run:
        run.add_exporter(kept)
        run.log_histogram("h", [1.0, 2.0, 3.0], step=4, bins=3)
        run.log_image("i", np.zeros((2, 2, 3), np.uint8), step=5)
        run.log_text("t", "hi", step=6)
    by_kind = {m[0]: m for m in kept.media}
    _, name, hist, step = by_kind["histogram"]
    assert (name, step) == ("h", 4) and isinstance(hist, Histogram) and hist.counts == (1, 1, 1)
    assert by_kind["image"][2] == RunReader(run.path).images("i")[0].path
    assert by_kind["text"][1:] == ("t", "hi", 6)


def test_bad_arguments_get_clear_errors_and_lose_nothing(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "a")
    run.log_text("ok", "kept", step=1)
    with pytest.raises(ValueError, match="histogram name must be a non-empty string"):
        run.log_histogram("", [1.0])
    with pytest.raises(ValueError, match=r"step must be an int >= 0 \(the global step.*\), got -1"):
        run.log_histogram("h", [1.0], step=-1)
    with pytest.raises(ValueError, match=r"bins must be an int from 1 to 1024 \(.*\), got 5000"):
        run.log_histogram("h", [1.0], bins=5000)
    with pytest.raises(ValueError, match=r"image 'i' is not a PNG image .* give PNG bytes, a "
                       r"\.png file, an HxWx\{1,3,4\} uint8 array or a matplotlib figure"):
        run.log_image("i", b"GIF89a not a png at all, definitely not one")
    with pytest.raises(TypeError, match=r"image 'i' is an array of dtype float64; give uint8 "
                       r"pixels \(0\.\.255\)"):
        run.log_image("i", np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match=r"image 'i' has shape \(2, 2, 2\); give an HxWx1, "
                       r"HxWx3 or HxWx4 array"):
        run.log_image("i", np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"image 'i': no file at .*nope\.png; give the "
                       r"path of a PNG"):
        run.log_image("i", tmp_path / "nope.png")
    with pytest.raises(TypeError, match=r"image 'i' must be a PNG path, PNG bytes, .* got int"):
        run.log_image("i", 3)
    with pytest.raises(TypeError, match=r"text 't' must be a str, got int"):
        run.log_text("t", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"text 't' has 1,048,577 characters; at most "
                       r"1,048,576"):
        run.log_text("t", "x" * (2**20 + 1))
    run.close()
    with pytest.raises(RuntimeError, match="run 'a' is closed; nothing more can be logged"):
        run.log_histogram("h", [1.0])
    reader = RunReader(run.path)
    assert [t.text for t in reader.texts("ok")] == ["kept"]
    assert reader.histogram_names() == [] and reader.image_names() == []
    with pytest.raises(KeyError, match=r"run 'a' has no histogram 'h'; its histograms: none"):
        reader.histograms("h")
    with pytest.raises(TypeError, match="image name must be a string, got int"):
        reader.images(3)  # type: ignore[arg-type]


def test_monitor_logs_at_its_global_step_and_without_a_record_does_nothing(
        tmp_path: Path) -> None:
    monitor = TrainingMonitor(range(3), file=io.StringIO(), system=False, root=tmp_path)
    for _ in monitor:
        monitor.log({"loss": 1.0})
    monitor.log_histogram("w", torch.ones(4, 4))
    monitor.log_image("img", torch.zeros(2, 2, 3, dtype=torch.uint8))
    monitor.log_text("t", "done")
    monitor.close()
    assert monitor.run is not None
    reader = RunReader(monitor.run.path)
    assert [h.step for h in reader.histograms("w")] == [3]
    assert reader.images("img")[0].step == 3 and reader.texts("t")[0].step == 3
    quiet = TrainingMonitor(range(1), file=io.StringIO(), record=False)
    quiet.log_histogram("w", torch.ones(3))
    quiet.close()


class SlowCopy:
    """A device copy still in flight (the record's HostCopy protocol): ready after ``polls``
    queries; what the loop side's host_copy hands over for a CUDA tensor."""

    def __init__(self, values: np.ndarray, polls: int) -> None:
        self.values, self.polls, self.queried = values, polls, 0

    def ready(self) -> bool:
        self.queried += 1
        return self.queried > self.polls

    def result(self) -> np.ndarray:
        assert self.queried > self.polls, "read before the copy landed"
        return self.values


def test_a_copy_in_flight_is_binned_once_it_landed_off_the_caller(tmp_path: Path) -> None:
    copy = SlowCopy(np.arange(8.0), polls=20)
    image = SlowCopy(np.zeros((2, 3, 3), np.uint8), polls=5)
    with Run.create(tmp_path, "a") as run:
        run.log_histogram("h", copy, step=1, bins=4)
        run.log_image("i", image, step=1)
    assert copy.queried == 21 and image.queried == 6
    reader = RunReader(run.path)
    assert reader.histograms("h")[0].histogram.counts == (2, 2, 2, 2)
    assert (reader.images("i")[0].width, reader.images("i")[0].height) == (3, 2)


def test_media_rows_are_checksummed_like_the_rest_of_the_record(tmp_path: Path) -> None:
    import sqlite3

    from loopwise.record.verify import DamagedRecordError

    with Run.create(tmp_path, "a") as run:
        run.log_histogram("h", [1.0, 2.0, 3.0], step=1, bins=3)
        run.log_text("t", "kept", step=1)
    reader = RunReader(run.path)
    assert reader.histograms("h")[0].histogram.counts == (1, 1, 1)  # intact: reads
    conn = sqlite3.connect(run.path / "store.sqlite")
    sums = conn.execute("SELECT tbl FROM row_sums ORDER BY tbl").fetchall()
    assert ("histograms",) in sums and ("texts",) in sums
    with conn:
        conn.execute("UPDATE histograms SET hi = 30.0")  # a flipped value
    conn.close()
    with pytest.raises(DamagedRecordError,
                       match=r"run 'a': histograms \(rows 1-1\) failed its checksum"):
        RunReader(run.path).histograms("h")
    assert RunReader(run.path).texts("t")[0].text == "kept"  # the rest still reads
    from loopwise.view.media_payload import media_payload

    media = media_payload(RunReader(run.path))  # the views leave the damaged table out
    assert media["histograms"] == {} and media["damaged"] == ["histograms"]
    assert media["texts"]["t"][0]["text"] == "kept"


def test_an_image_file_changed_on_disk_is_named_damaged_and_the_others_still_read(
        tmp_path: Path) -> None:
    import os

    from loopwise.record.intact import intact
    from loopwise.record.verify import DamagedRecordError

    red, blue = np.full((4, 6, 3), (200, 0, 0), np.uint8), np.full((4, 6, 3), (0, 0, 200), np.uint8)
    with Run.create(tmp_path, "a") as run:
        run.log_image("pred", red, step=1)
        run.log_image("pred", blue, step=2)
        run.log_image("pred", red, step=3)  # the same file as step 1
    reader = RunReader(run.path)
    first, second, _ = reader.images("pred")
    assert first.name == "pred" and reader.image_bytes(first) == encode_png(red)
    assert reader.damaged_parts() == [] and reader.damaged_images() == []
    first.path.write_bytes(b"\x89PNG garbage" + bytes(50))  # overwritten on disk
    said = (f"{first.path} is corrupt (run 'a': image 'pred' at step 1 failed its checksum); "
            "its bytes no longer match the SHA-256")
    with pytest.raises(DamagedRecordError) as caught:
        reader.image_bytes(first)
    assert str(caught.value).startswith(said) and caught.value.run == "a"
    with pytest.raises(DamagedRecordError, match="image 'pred' at step 1"):
        reader.image_bytes(first.digest)  # by digest: named after its first entry
    assert reader.image_bytes(second) == encode_png(blue)  # the other image still reads
    with pytest.raises(TypeError, match=r"image_bytes\(\) takes an ImageEntry of images\(\) "
                                        r"or its digest \(a str\), got int"):
        reader.image_bytes(3)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="has no image 'nope'"):
        reader.image_bytes("nope")
    (damage,) = RunReader(run.path).damaged_parts()
    assert damage.part == "image 'pred' at step 1 (and 1 more logged with its content)"
    assert damage.path == first.path and damage.run == "a"
    kept = intact(RunReader(run.path))
    assert [e.step for e in kept.images("pred")] == [2] and kept.damage[0].part == damage.part
    # a viewer polling the run hashes a file again only once it changed (size, mtime)
    verified: set[tuple[int, int]] = set()
    assert len(reader.damaged_images(verified=verified)) == 1 and len(verified) == 1
    stat = second.path.stat()
    second.path.write_bytes(b"x" * stat.st_size)
    os.utime(second.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert len(reader.damaged_images(verified=verified)) == 1  # its mark: not hashed again
    second.path.write_bytes(b"x" * (stat.st_size + 1))
    assert [d.part for d in reader.damaged_images(verified=verified)] == [
        damage.part, "image 'pred' at step 2"]
