"""TensorBoard mirror of a run: event files of TensorBoard's protos and record format.

Why not ``torch.utils.tensorboard.SummaryWriter`` (or TensorBoard's ``EventFileWriter``):
importing it imports TensorFlow whenever TensorFlow is installed (8 s here, for ``tf.io.gfile``),
and its record writer checksums byte by byte in Python; the exporter writes TensorBoard's protos
itself, framed by :mod:`loopwise.export.tfrecord`, from the thread it already has. Only
:meth:`TensorBoardExporter.log_graph` uses torch's graph tracer (and pays that import once).

What is written (tags keep the record's names, so runs line up with the record):

* every scalar series at its global step and wall time: ``loss``, ``lr``, ``epoch``,
  ``epoch/<name>``, ``epoch/val_<name>``...; several series at one step share one event;
* system samples as ``system/<name>``, step = the sample's index in the run, wall time = when it
  was taken (choose TensorBoard's "Wall" axis to line them up with training);
* events as text under ``events/<kind>`` at the step they refer to (``data.step`` for health
  findings, the run's global step otherwise);
* at close: hparams (the config, flattened with dotted keys) with the final ``epoch/...`` values
  as the metrics;
* the record's histograms (``HistogramProto``: the histograms and distributions dashboards),
  images and text at their steps; :meth:`log_histograms` (weights and gradients of a module)
  and :meth:`log_figure` record into the run, which hands them here like everything else;
* on request: the model graph (:meth:`log_graph`).
"""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopwise.export.base import Exporter
from loopwise.export.params import flatten_config, scalar_param
from loopwise.export.payload import EventRow, Sample
from loopwise.export.tfrecord import RecordFramer, scalar_event, scalar_prefix
from loopwise.record.histogram import Histogram
from loopwise.record.png import png_size
from loopwise.record.recorder import ColumnData
from loopwise.utils.text import printable
from loopwise.utils.validate import check_count, check_int, check_optional_int

if TYPE_CHECKING:
    from loopwise.record.run import Run

EXTRA = "pip install 'loopwise[tensorboard]'"


def _tb() -> Any:
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
    except ImportError as exc:
        raise ImportError(f"the TensorBoard exporter needs the tensorboard package: {EXTRA}"
                          ) from exc
    return event_pb2, summary_pb2


class _EventFile:
    """One ``events.out.tfevents.*`` file, written synchronously by the exporter's thread
    (TensorBoard's ``EventFileWriter`` goes through ``tf.io.gfile``, which imports TensorFlow
    when it is installed, adds a thread of its own, and checksums byte by byte in Python)."""

    def __init__(self, folder: Path) -> None:
        event_pb2, _ = _tb()
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}"
        n = 0
        while (folder / f"{name}.{n}").exists():
            n += 1
        self.path = folder / f"{name}.{n}"
        self._framer = RecordFramer()
        self._file = open(self.path, "xb")  # noqa: SIM115 - closed by close()
        self.write([event_pb2.Event(wall_time=now, file_version="brain.Event:2")])

    def write(self, events: Sequence[Any]) -> None:
        self.write_blobs([e.SerializeToString() for e in events])

    def write_blobs(self, blobs: Sequence[bytes]) -> None:
        self._file.write(self._framer.frame(blobs))

    def write_scalars(self, series: Sequence[tuple[bytes, ColumnData]]) -> None:
        """Scalar events of whole columns (see :meth:`RecordFramer.scalars`)."""
        self._file.write(self._framer.scalars(series))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Flush, fsync (once, at the end: the file is whole on disk) and close."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()


class TensorBoardExporter(Exporter):
    """Mirror a run into TensorBoard event files under ``log_dir`` (default: the run folder's
    ``tensorboard/``). ``histogram_every``: :meth:`log_histograms` given an ``epoch`` writes
    only every that many epochs."""

    backend = "tensorboard"
    deliveries = ("process", "thread")

    def __init__(self, log_dir: str | os.PathLike[str] | None = None, *,
                 histogram_every: int = 1, **delivery: Any) -> None:
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir must be a folder path, got {type(log_dir).__name__}")
        if log_dir is not None and os.path.lexists(log_dir) and not os.path.isdir(log_dir):
            # refused now: on the exporter thread it would be retried until the run closes
            raise ValueError(f"log_dir {printable(log_dir)} exists and is not a folder; give "
                             "a folder for the TensorBoard event files")
        histogram_every = check_int(histogram_every, what="histogram_every", minimum=1,
                                    hint="epochs between histograms")
        _tb()  # fail now, naming the extra, rather than on the exporter thread
        super().__init__(**delivery)
        self._log_dir = None if log_dir is None else Path(log_dir)
        self._histogram_every = histogram_every
        self._writer: _EventFile | None = None
        self._params: Mapping[str, Any] = {}
        self._metric_tags: dict[str, None] = {}
        self._samples = 0
        self._prefixes: dict[str, bytes] = {}
        self._start_time: float | None = None
        self._run: Run | None = None

    @property
    def log_dir(self) -> Path:
        """Where the event files go."""
        if self._log_dir is not None:
            return self._log_dir
        if self.link.path is None:
            raise ValueError("TensorBoardExporter() was given no log_dir and is attached to no "
                             "run; pass log_dir='tb' or attach it with run.add_exporter()")
        return self.link.path / "tensorboard"

    # -- helpers called from the training thread -----------------------------------------------
    def bind_run(self, run: Run) -> None:
        super().bind_run(run)
        self._run = run  # log_histograms and log_figure record into it

    def log_histograms(self, model: Any, *, step: int | None = None,
                       epoch: int | None = None) -> bool:
        """Weight (``weights/<param>``) and gradient (``grads/<param>``) histograms of a torch
        module at ``step`` (default: the run's global step), recorded in the run this exporter
        is attached to (and from there written here). Given ``epoch``, only every
        ``histogram_every``-th epoch is recorded (call it at every epoch end); returns whether
        it recorded. No device sync: see :func:`loopwise.watch.hostcopy.model_histograms`."""
        if not hasattr(model, "named_parameters"):
            raise TypeError(f"log_histograms() takes a torch.nn.Module, got "
                            f"{type(model).__name__}")
        epoch = check_optional_int(epoch, what="epoch", minimum=0,
                                   hint="the epoch that ended; None: record every call")
        if epoch is not None and epoch % self._histogram_every:
            return False
        if self._run is not None:
            from loopwise.watch.hostcopy import model_histograms  # torch: only when called

            model_histograms(self._run, model, step=self._step(step))
        else:  # on its own: binned here, on the calling thread
            at = self._step(step)
            for name, param in model.named_parameters():
                self.log_histogram(f"weights/{name}", param.detach().float().cpu().numpy(),
                                   step=at)
                if param.grad is not None:
                    self.log_histogram(f"grads/{name}",
                                       param.grad.detach().float().cpu().numpy(), step=at)
        return True

    def log_graph(self, model: Any, example_input: Any) -> None:
        """The model graph, traced with ``example_input`` (torch's tracer, run now)."""
        if not hasattr(model, "named_parameters"):
            raise TypeError(f"log_graph() takes a torch.nn.Module, got {type(model).__name__}")
        from torch.utils.tensorboard._pytorch_graph import graph

        graph_def, run_meta = graph(model, example_input)  # type: ignore[no-untyped-call]
        event_pb2, _ = _tb()
        now = time.time()
        events = [event_pb2.Event(wall_time=now, graph_def=graph_def.SerializeToString())]
        if run_meta is not None:
            meta = event_pb2.TaggedRunMetadata(tag="step1",
                                               run_metadata=run_meta.SerializeToString())
            events.append(event_pb2.Event(wall_time=now, tagged_run_metadata=meta))
        self.call("_write", events)

    def log_figure(self, tag: str, figure: Any, *, step: int | None = None) -> None:
        """An image at ``step``: a matplotlib figure, or the path of a PNG file (what
        ``render_predictions`` returns), recorded in the run this exporter is attached to (and
        from there written here). The figure is rendered now, on the calling thread."""
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"tag must be a non-empty string, got {tag!r}")
        if not isinstance(figure, (str, os.PathLike)) and not hasattr(figure, "savefig"):
            raise TypeError(f"figure must be a matplotlib Figure or a PNG path, got "
                            f"{type(figure).__name__}")
        if self._run is not None:
            self._run.log_image(tag, figure, step=self._step(step))
            return
        if isinstance(figure, (str, os.PathLike)):
            png = Path(figure).read_bytes()
        else:
            buf = io.BytesIO()
            figure.savefig(buf, format="png")
            png = buf.getvalue()
        self.log_image(tag, png, step=self._step(step))

    # -- backend -------------------------------------------------------------------------------
    def _open(self) -> None:
        self._writer = _EventFile(self.log_dir)
        if self._start_time is None:
            info = self.link.info()
            start = info.get("start_time")
            self._start_time = float(start) if isinstance(start, (int, float)) else None

    def _send_columns(self, columns: Mapping[str, ColumnData]) -> None:
        for key in columns:
            if key.startswith("epoch/"):
                self._metric_tags[key] = None
        writer = self._open_writer()
        writer.write_scalars([(self._prefix(key), col) for key, col in columns.items()])
        writer.flush()

    def _send_system(self, samples: Sequence[Sample]) -> None:
        blobs = []
        for sample in samples:
            vals = [(self._prefix(f"system/{k}"), v) for k, v in sample.values.items()]
            blobs.append(scalar_event(sample.time, self._samples, vals))
            self._samples += 1
        self._write_blobs(blobs)

    def _send_events(self, events: Sequence[EventRow]) -> None:
        from tensorboard.plugins.text.summary_v2 import text_pb

        event_pb2, _ = _tb()
        out = []
        for row in events:
            text = f"**{row.level}** {row.kind}: {row.message}"
            if row.data:
                text += f"\n\n`{dict(row.data)}`"
            out.append(event_pb2.Event(wall_time=row.time, step=row.step,
                                       summary=text_pb(f"events/{row.kind}", text)))
        self._write(out)

    def _send_config(self, config: Mapping[str, Any]) -> None:
        self._params = config  # written as hparams at close, with the final metrics

    def _finish(self, status: str, error: str | None) -> None:
        from tensorboard.plugins.hparams import summary_v2 as hp

        event_pb2, _ = _tb()
        params = {k: scalar_param(v) for k, v in flatten_config(self._params).items()}
        params["status"] = status
        metrics = [hp.Metric(tag) for tag in self._metric_tags]
        config_pb = hp.hparams_config_pb([hp.HParam(k) for k in params], metrics)
        session_pb = hp.hparams_pb(params, trial_id=str(self.link.info().get("name", "")) or None,
                                   start_time_secs=self._start_time)
        now = time.time()
        self._write([event_pb2.Event(wall_time=now, summary=config_pb),
                     event_pb2.Event(wall_time=now, summary=session_pb)])

    def _release(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def _reset(self) -> None:
        self._release()  # a failed write: the next attempt opens a new event file

    # -- internals -------------------------------------------------------------------------------
    def _open_writer(self) -> _EventFile:
        writer = self._writer
        if writer is None:
            raise RuntimeError("the event file is not open")
        return writer

    def _write(self, events: Sequence[Any]) -> None:
        writer = self._open_writer()
        writer.write(events)
        writer.flush()

    def _write_blobs(self, blobs: Sequence[bytes]) -> None:
        writer = self._open_writer()
        writer.write_blobs(blobs)
        writer.flush()

    def _prefix(self, tag: str) -> bytes:
        prefix = self._prefixes.get(tag)
        if prefix is None:
            prefix = self._prefixes[tag] = scalar_prefix(tag)
        return prefix

    def _write_summary(self, summary: Any, step: int, wall_time: float) -> None:
        event_pb2, _ = _tb()
        self._write([event_pb2.Event(wall_time=wall_time, step=step, summary=summary)])

    def _send_histogram(self, name: str, hist: Histogram, step: int, wall_time: float) -> None:
        """A binned histogram as TensorBoard's ``HistogramProto`` (the histograms and
        distributions dashboards read it; its buckets are the record's bins)."""
        _, summary_pb2 = _tb()
        proto = summary_pb2.HistogramProto(
            min=hist.lo, max=hist.hi, num=hist.total, sum=hist.sum, sum_squares=hist.sum_sq,
            bucket_limit=hist.edges()[1:], bucket=[float(c) for c in hist.counts])
        value = summary_pb2.Summary.Value(tag=name, histo=proto)
        self._write_summary(summary_pb2.Summary(value=[value]), step, wall_time)

    def _send_image(self, name: str, png: bytes, step: int, wall_time: float) -> None:
        _, summary_pb2 = _tb()
        width, height = png_size(png, what=f"image {name!r}")
        image = summary_pb2.Summary.Image(height=height, width=width, colorspace=4,
                                          encoded_image_string=png)
        self._write_summary(summary_pb2.Summary(value=[summary_pb2.Summary.Value(
            tag=name, image=image)]), step, wall_time)

    def _send_text(self, name: str, text: str, step: int, wall_time: float) -> None:
        from tensorboard.plugins.text.summary_v2 import text_pb

        self._write_summary(text_pb(name, text), step, wall_time)

    def _step(self, step: int | None) -> int:
        if step is None:
            return self.link.global_step()
        return check_count(step, what="step", hint="the global step; None: the run's own")
