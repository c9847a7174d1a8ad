"""MLflow mirror of a run, delivered with ``MlflowClient.log_batch`` from the exporter's delivery
thread (in a process of its own by default: ``delivery="process"``, see :mod:`.base`).

* Params: the config flattened with dotted keys (``optimizer.lr``), values cut to MLflow's
  6,000 characters. MLflow params cannot change: a key set again with another value keeps its
  first value and the new one goes to the tag ``loopwise.config.<key>``.
* Metrics: every series under the record's name (``loss``, ``epoch/val_loss``, ``lr``...) at
  its global step and wall time, at most 1,000 per ``log_batch`` call (MLflow's limit); never
  one ``log_metric`` per value. A name MLflow refuses has each refused character replaced by
  ``_``. System samples go to ``system/<name>`` with step = the sample's index in the run (the
  same live and in a backfill) and the sample's own wall time.
* Tags: ``loopwise.run_id``, ``loopwise.status``, ``loopwise.version``, ``loopwise.host``,
  ``loopwise.folder``, ``mlflow.source.git.commit``; the error (traceback) of a failed run.
* Histograms, images and text of the record, as artifacts under their name and step:
  ``histograms/<name>/step_<step>.json`` (bin edges, counts, total, sum, sum of squares),
  ``images/<name>/step_<step>.png``, ``texts/<name>/step_<step>.txt`` (steps zero-padded to
  9 digits, so they sort).
* At close: the artifacts of the run folder (``config.json``, plots ``*.png``, ``report.html``,
  ``history.csv``, the best checkpoint ``*best*.pt``/``.pth``), the events as
  ``loopwise/events.jsonl``, an optional model version (``register_model=``), then the final
  status: ``FINISHED``, ``FAILED`` (a failed or crashed run) or ``KILLED`` (interrupted).

The MLflow run is found again by its ``loopwise.run_id`` tag: a resumed loopwise run, or a
backfill of a run that crashed while it was mirrored live (left ``RUNNING`` in MLflow), continues
and closes that MLflow run instead of making a second one. Points it already holds are not sent
again (a metric's history is read once, when the run holds it up to a step the points to send
reach); MLflow's SQL store would also ignore a metric sent twice with the same step, time and
value, but only after a failed insert of the whole batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from loopwise.export.base import Exporter
from loopwise.export.params import flatten_config, param_text
from loopwise.export.payload import EventRow, Sample
from loopwise.record.folder import CONFIG_FILE, REPORT_FILE
from loopwise.record.histogram import Histogram
from loopwise.record.provenance import package_version
from loopwise.record.recorder import ColumnData
from loopwise.utils.jsonsafe import json_safe
from loopwise.utils.validate import check_count

EXTRA = "pip install 'loopwise[mlflow]'"
STATUS = {"finished": "FINISHED", "failed": "FAILED", "crashed": "FAILED",
          "interrupted": "KILLED"}
ARTIFACTS = (CONFIG_FILE, "*.png", REPORT_FILE, "history.csv", "*best*.pt", "*best*.pth",
             "checkpoints/*best*")
METRICS_PER_CALL = 1000  # MLflow's MAX_METRICS_PER_BATCH
IN_FLIGHT = 4  # log_batch requests at once to a tracking server (one at a time to a store)
PARAMS_PER_CALL = 100  # MAX_PARAMS_TAGS_PER_BATCH
PARAM_LENGTH = 6000  # MAX_PARAM_VAL_LENGTH
TAG_LENGTH = 8000  # MAX_TAG_VAL_LENGTH
KEY_LENGTH = 250  # MAX_ENTITY_KEY_LENGTH
EVENTS_KEPT = 10_000
_REFUSED = re.compile(r"[^\w\-. /]")
# MLflow's tracking stores, by URI scheme ("postgresql+psycopg2": the part before "+")
SCHEMES = ("http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks",
           "databricks-uc", "uc")
# MLflow retries each HTTP call 7 times with backoff (minutes) and waits 120 s per call: a
# server down looked like a slow one, and no failure was counted. The exporter's own backoff
# retries instead (the delivery process, the delivery thread and the backfill verb get these
# unless set).
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
_THREAD_ENV = "loopwise_mlflow_env"  # the attribute of a thread whose MLflow calls use HTTP_ENV


def thread_http_env() -> None:
    """Give the calling thread (an exporter's delivery thread, ``delivery="thread"``) the
    :data:`HTTP_ENV` settings for each variable the user did not set, as the delivery process
    gets them in its environment: MLflow reads its variables through
    ``mlflow.environment_variables``, and on a thread so marked a variable that is not set reads
    as :data:`HTTP_ENV` says. The process environment is not changed: the user's own MLflow
    calls, on their threads, keep MLflow's settings."""
    from mlflow import environment_variables as variables

    setattr(threading.current_thread(), _THREAD_ENV, HTTP_ENV)
    for name in HTTP_ENV:
        variable = getattr(variables, name)
        if not getattr(variable, "loopwise_scoped", False):
            variable.get_raw = _scoped(variable.get_raw, name)
            variable.loopwise_scoped = True


def _scoped(read: Callable[[], str | None], name: str) -> Callable[[], str | None]:
    def get_raw() -> str | None:
        value = read()
        if value is None:
            env = getattr(threading.current_thread(), _THREAD_ENV, None)
            if env is not None:
                return str(env[name])
        return value
    return get_raw


def check_tracking_uri(uri: str) -> str:
    """``uri`` when MLflow has a tracking store for its scheme (or it is a plain path), else a
    ValueError naming the schemes it takes."""
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*)://", uri)
    if scheme is not None and scheme.group(1).lower().split("+")[0] not in SCHEMES:
        raise ValueError(f"tracking_uri {uri!r}: MLflow has no tracking store for "
                         f"{scheme.group(1)!r}://; use one of "
                         f"{', '.join(s + '://' for s in SCHEMES)} (e.g. "
                         f"'sqlite:///abs/mlflow.db' or 'http://127.0.0.1:5000')")
    return uri


def artifact_name(name: str) -> str:
    """A record name as an artifact folder: each character MLflow refuses as ``_``, no empty,
    ``.`` or ``..`` part (``weights/fc1.weight`` stays as it is)."""
    parts = [p for p in _REFUSED.sub("_", name).split("/") if p.strip(". ")]
    return "/".join(parts) or "_"


def _mlflow() -> Any:
    try:
        from mlflow import entities
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ImportError(f"the MLflow exporter needs mlflow: {EXTRA}") from exc
    return MlflowClient, entities, MlflowException


@contextlib.contextmanager
def store_lock(uri: str | None) -> Iterator[None]:
    """Hold the lock under which loopwise opens the MLflow store ``uri`` (None: the
    ``MLFLOW_TRACKING_URI`` MLflow would use) when it is a ``sqlite:`` file: MLflow makes the
    tables of a fresh SQLite store unlocked, and two processes opening it at once fail ("table
    ... already exists"; a killed run's delivery process and its resume do); the lock also makes
    find-or-create of the MLflow run one step. Nothing for a server (it makes its own schema)."""
    target = os.environ.get("MLFLOW_TRACKING_URI", "") if uri is None else uri
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: MLflow's own (racy) set-up
        fcntl = None  # type: ignore[assignment]
    if not target.startswith("sqlite:") or fcntl is None:
        yield
        return
    digest = hashlib.sha256(target.encode("utf-8")).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"loopwise-mlflow-{digest}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the file releases the lock


def metric_name(key: str) -> str:
    """``key`` as MLflow takes it: refused characters (and ``..`` path tricks) become ``_``."""
    name = _REFUSED.sub("_", key).replace("..", "__")
    return name[:KEY_LENGTH].strip("/") or "_"


class MLflowExporter(Exporter):
    """Mirror a run into MLflow at ``tracking_uri`` (``sqlite:///abs/path.db``, ``http://host:
    port`` of a tracking server; None: MLflow's default, ``MLFLOW_TRACKING_URI``)."""

    backend = "mlflow"
    deliveries = ("process", "thread")
    process_env = HTTP_ENV

    def __init__(self, tracking_uri: str | None = None, *, experiment: str = "loopwise",
                 run_name: str | None = None, register_model: str | None = None,
                 artifacts: Sequence[str] = ARTIFACTS, artifact_location: str | None = None,
                 tags: Mapping[str, str] | None = None, **delivery: Any) -> None:
        if tracking_uri is not None and (not isinstance(tracking_uri, str) or not tracking_uri):
            raise ValueError(f"tracking_uri must be a non-empty string such as "
                             f"'sqlite:///abs/mlflow.db' or 'http://127.0.0.1:5000', got "
                             f"{tracking_uri!r}")
        if tracking_uri is not None:
            check_tracking_uri(tracking_uri)
        for what, value in (("experiment", experiment), ("run_name", run_name),
                            ("register_model", register_model),
                            ("artifact_location", artifact_location)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{what} must be a non-empty string, got {value!r}")
        if isinstance(artifacts, str) or not all(isinstance(a, str) for a in artifacts):
            raise TypeError("artifacts must be a sequence of glob patterns such as "
                            "('config.json', '*.png')")
        if tags is not None and not all(isinstance(k, str) and isinstance(v, str)
                                        for k, v in tags.items()):
            raise TypeError("tags must map strings to strings")
        if importlib.util.find_spec("mlflow") is None:
            raise ImportError(f"the MLflow exporter needs mlflow: {EXTRA}")
        delivery.setdefault("close_timeout", 30.0)  # a cold start (schema set-up) takes ~10 s
        super().__init__(**delivery)
        self._uri = tracking_uri
        self._experiment = experiment
        self._run_name = run_name
        self._register = register_model
        self._artifacts = tuple(artifacts)
        self._artifact_location = artifact_location
        self._user_tags = dict(tags or {})
        self._client: Any = None
        self.run_id: str | None = None
        self._params: dict[str, str] = {}
        self._samples = 0
        self._events: deque[str] = deque(maxlen=EVENTS_KEPT)
        self._health = 0
        self._progress: tuple[int, set[int]] = (0, set())  # (payload, batches delivered)
        self._pool: ThreadPoolExecutor | None = None
        self._latest: dict[str, int] = {}  # a found run: each metric's last step there
        self._there: dict[str, set[tuple[int, int, float | None]]] = {}  # its points there
        self._old_error = False  # a resumed MLflow run holds the error of its earlier end

    # -- backend -------------------------------------------------------------------------------
    def _open(self) -> None:
        thread_http_env()  # every call of this exporter runs on this (its delivery) thread
        with store_lock(self._uri):
            self._open_run()

    def _open_run(self) -> None:
        client_cls, _, _ = _mlflow()
        self._client = client_cls(tracking_uri=self._uri)
        if self.run_id is not None:
            return
        exp = self._client.get_experiment_by_name(self._experiment)
        if exp is None:
            exp_id = self._client.create_experiment(self._experiment,
                                                    artifact_location=self._artifact_location)
        else:
            exp_id = exp.experiment_id
        info = self.link.info()
        run_uuid = info.get("id")
        found = []
        if isinstance(run_uuid, str) and re.fullmatch(r"[0-9a-f]+", run_uuid):
            found = self._client.search_runs(
                [exp_id], filter_string=f"tags.`loopwise.run_id` = '{run_uuid}'", max_results=1)
        if found:
            self.run_id = found[0].info.run_id
            self._params = dict(found[0].data.params)
            self._latest = {m.key: m.step for m in found[0].data.to_proto().metrics}
            self._old_error = "loopwise.error" in found[0].data.tags
            if found[0].info.status != "RUNNING":
                self._client.update_run(self.run_id, status="RUNNING")
            self._set_tags({"loopwise.status": "running"})
            return
        tags = {"loopwise.status": "running", "loopwise.version": package_version("loopwise")
                or "unknown", **self._user_tags}
        for tag, field in (("loopwise.run_id", "id"), ("loopwise.host", "host"),
                           ("mlflow.source.git.commit", "git_commit")):
            if info.get(field):
                tags[tag] = str(info[field])
        if self.link.path is not None:
            tags["loopwise.folder"] = str(self.link.path)
        start = info.get("start_time")
        run = self._client.create_run(
            exp_id, start_time=int(start * 1000) if isinstance(start, (int, float)) else None,
            tags=tags, run_name=self._run_name or info.get("name"))
        self.run_id = run.info.run_id

    def _send_columns(self, columns: Mapping[str, ColumnData]) -> None:
        _, entities, _ = _mlflow()
        metric = entities.Metric
        out: list[Any] = []
        for key, (steps, times, values) in columns.items():
            name = metric_name(key)
            there = self._already_there(name, steps)
            if there is None:
                out.extend(metric(name, v, int(t * 1000), s)
                           for s, t, v in zip(steps, times, values, strict=True))
                continue
            for s, t, v in zip(steps, times, values, strict=True):
                ms = int(t * 1000)
                if (s, ms, None if v != v else v) not in there:
                    out.append(metric(name, v, ms, s))
        self._log_metrics(id(columns), out)

    def _already_there(self, name: str, steps: Sequence[int]
                       ) -> set[tuple[int, int, float | None]] | None:
        """The points of metric ``name`` the MLflow run already holds, as ``(step, ms,
        value)`` (NaN: None), when some of ``steps`` may be among them: the run was found
        again (a resumed backfill, a live mirror's crashed run) and holds ``name`` up to a
        step at or past one of them. Its history is read once; None: nothing to skip."""
        last = self._latest.get(name)
        if last is None or not steps or min(steps) > last:
            return None
        there = self._there.get(name)
        if there is None:
            there = self._there[name] = {
                (m.step, m.timestamp, None if m.value != m.value else m.value)
                for m in self._client.get_metric_history(self.run_id, name)}
        return there

    def _send_system(self, samples: Sequence[Sample]) -> None:
        _, entities, _ = _mlflow()
        metric = entities.Metric
        out: list[Any] = []
        index = self._samples
        for sample in samples:
            ms = int(sample.time * 1000)
            out.extend(metric(metric_name(f"system/{k}"), v, ms, index)
                       for k, v in sample.values.items())
            index += 1
        self._log_metrics(id(samples), out)
        self._samples = index

    def _send_events(self, events: Sequence[EventRow]) -> None:
        for row in events:
            self._events.append(json.dumps({
                "time": row.time, "step": row.step, "level": row.level, "kind": row.kind,
                "message": row.message, "data": row.data}, default=str))
            self._health += row.kind.startswith("health.")

    def _send_config(self, config: Mapping[str, Any]) -> None:
        _, entities, _ = _mlflow()
        params, changed = [], {}
        for key, value in flatten_config(config).items():
            name, text = metric_name(key), param_text(value, limit=PARAM_LENGTH)
            if name not in self._params:
                params.append(entities.Param(name, text))
            elif self._params[name] != text:
                changed[f"loopwise.config.{name}"[:KEY_LENGTH]] = text
        for i in range(0, len(params), PARAMS_PER_CALL):
            chunk = params[i:i + PARAMS_PER_CALL]
            self._client.log_batch(self.run_id, params=chunk)
            self._params.update((p.key, p.value) for p in chunk)
        self._set_tags(changed)

    def _send_histogram(self, name: str, hist: Histogram, step: int, wall_time: float) -> None:
        body = {"name": name, "step": step, "time": wall_time, "edges": hist.edges(),
                **hist.to_json()}
        self._client.log_text(self.run_id, json.dumps(json_safe(body), allow_nan=False),
                              f"histograms/{artifact_name(name)}/step_{step:09d}.json")

    def _send_image(self, name: str, png: bytes, step: int, wall_time: float) -> None:
        with tempfile.TemporaryDirectory(prefix="loopwise-mlflow-") as tmp:
            file = Path(tmp) / f"step_{step:09d}.png"
            file.write_bytes(png)
            self._client.log_artifact(self.run_id, str(file), f"images/{artifact_name(name)}")

    def _send_text(self, name: str, text: str, step: int, wall_time: float) -> None:
        self._client.log_text(self.run_id, text,
                              f"texts/{artifact_name(name)}/step_{step:09d}.txt")

    def _finish(self, status: str, error: str | None) -> None:
        uploaded = self._upload_artifacts()
        if self._events:
            self._client.log_text(self.run_id, "\n".join(self._events) + "\n",
                                  "loopwise/events.jsonl")
        tags = {"loopwise.status": status, "loopwise.health_events": str(self._health)}
        if error:
            tags["loopwise.error"] = param_text(error, limit=TAG_LENGTH)
        elif self._old_error:  # the earlier end's error is not this end's
            self._client.delete_tag(self.run_id, "loopwise.error")
            self._old_error = False
        if self._register is not None:
            tags.update(self._register_model(uploaded))
        self._set_tags(tags)
        end = self.link.info().get("end_time")
        self._client.set_terminated(
            self.run_id, status=STATUS.get(status, "FAILED"),
            end_time=int(end * 1000) if isinstance(end, (int, float)) else None)

    def _reset(self) -> None:
        self._client = None

    def _release(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True)

    # -- internals -------------------------------------------------------------------------------
    def _log_metrics(self, token: int, metrics: Sequence[Any]) -> None:
        """``log_batch`` in chunks of 1,000 (MLflow's limit), handed out in order; to a
        tracking server ``IN_FLIGHT`` requests at once (its metric history is ordered by time
        and step however they land). A retry of the same payload sends only the chunks that
        did not go through; after the first failure no further chunk is started."""
        done = self._progress[1] if self._progress[0] == token else set()
        self._progress = (token, done)
        todo = [i for i in range(0, len(metrics), METRICS_PER_CALL) if i not in done]
        client, run_id = self._client, self.run_id

        failed: list[BaseException] = []

        def send(i: int) -> None:
            if failed:
                return  # a chunk failed: the retry sends this one
            try:
                client.log_batch(run_id, metrics=metrics[i:i + METRICS_PER_CALL])
            except BaseException as exc:
                failed.append(exc)
                raise
            done.add(i)

        uri = self._uri or os.environ.get("MLFLOW_TRACKING_URI", "")
        if len(todo) < 2 or not uri.lower().startswith(("http:", "https:")):
            for i in todo:
                send(i)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="loopwise-mlflow")
            wait([self._pool.submit(send, i) for i in todo])
            if failed:
                raise failed[0]
        self._progress = (0, set())

    def _set_tags(self, tags: Mapping[str, str]) -> None:
        _, entities, _ = _mlflow()
        items = [entities.RunTag(k, param_text(v, limit=TAG_LENGTH)) for k, v in tags.items()]
        for i in range(0, len(items), PARAMS_PER_CALL):
            self._client.log_batch(self.run_id, tags=items[i:i + PARAMS_PER_CALL])

    def _upload_artifacts(self) -> list[str]:
        folder = self.link.path
        if folder is None:
            return []
        done: list[str] = []
        for pattern in self._artifacts:
            for file in sorted(folder.glob(pattern)):
                rel = file.relative_to(folder).as_posix()
                if not file.is_file() or rel in done or any(
                        part.startswith(".") for part in Path(rel).parts):
                    continue  # a hidden file: a checkpoint's recycled .spare-<name>, a temp
                parent = str(Path(rel).parent)
                self._client.log_artifact(self.run_id, str(file),
                                          None if parent == "." else parent)
                done.append(rel)
        return done

    def _register_model(self, uploaded: Sequence[str]) -> dict[str, str]:
        _, _, mlflow_error = _mlflow()
        best = [rel for rel in uploaded if "best" in Path(rel).name]
        if not best:
            self._note("exporter_register_skipped", "warning",
                       f"register_model={self._register!r}: the run folder holds no best "
                       f"checkpoint (*best*.pt or *best*.pth); no model version was made",
                       {"model": self._register})
            return {}
        try:
            self._client.create_registered_model(self._register)
        except mlflow_error as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(getattr(exc, "error_code", exc)):
                raise
        uri = self._client.get_run(self.run_id).info.artifact_uri
        version = self._client.create_model_version(
            self._register, source=f"{uri}/{best[0]}", run_id=self.run_id)
        return {"loopwise.model_version": f"{self._register}/{version.version}"}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "run_id": self.run_id, "samples": self._samples}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        run_id, samples = state.get("run_id"), state.get("samples", 0)
        if run_id is not None and not isinstance(run_id, str):
            raise ValueError(f"state['run_id'] must be an MLflow run id or None, got {run_id!r}")
        samples = check_count(samples, what="state['samples']")
        self.run_id, self._samples = run_id, samples
