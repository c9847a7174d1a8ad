"""The prose of docs/benchmarks.md: why a goal is missed, and each section's introduction."""

from __future__ import annotations

ENTRY_WHY = {
    "TrainingMonitor": "Where the time goes (training-thread CPU of each step by its position "
    "in the epoch: bench/epoch_profile.py; benchmarks-notes.md, 'Where an epoch's added time "
    "falls'): a step costs ~4-6 us more than the plain loop's (the monitor's iterator and "
    "log() are ~1 us in a tight loop, several times that with torch's work between the calls), "
    "and each epoch ~1 ms: the pass end (the last window folded and handed to the store's "
    "thread, the bar's final line, the pass_end event and the epoch summary as JSON-log "
    "lines) and the next monitor. With 100-step epochs of ~150 us that is ~10-14 us/step; "
    "1.05x needs epochs of ~150 steps or more. Nothing here waits on the device or the disk.",
    "TrainingSession": "Where the time goes (bench/epoch_profile.py; benchmarks-notes.md, "
    "'Where an epoch's added time falls'): a step costs ~4-7 us more than the plain loop's "
    "(its phase and step checks, the row, the accumulator's append, the bar's check: ~1.2 us "
    "in a tight loop, several times that in a real one), and each epoch ~0.6 ms: the bar's "
    "final line, the window handed to the run, one epoch/* record with its JSON-log line and "
    "the epoch_end event. Off a terminal the bar writes a tenth's line only a second after "
    "its last (since 2026-12-06; a line per tenth of a 15 ms epoch had cost ~18 us/step).",
    "Workflow": "Workflow checkpoints every epoch, as Keras's BackupAndRestore and "
    "Lightning's ModelCheckpoint do by default: last_checkpoint.pth and last_weights.pt "
    "(temp file, hash, fsync, os.replace, the manifest), history.csv and run.json, ~10 "
    "fsyncs and ~4 ms of CPU per epoch. One ordered background thread writes them, but on 2 "
    "cores its Python (the pickler, the manifest, the CSV) takes the GIL from the next "
    "epoch's first steps (steps 1-5 cost ~400 us instead of ~150); written on the training "
    "thread instead, the same save costs it as much (bench/epoch_profile.py, "
    "workflow:sync). Per epoch of 100 steps (thread CPU): the save ~2.5-3 ms, the rest (the "
    "monitor pass, history, the state capture) ~1.5-2.3 ms; with ~15 ms epochs that is the "
    "gap. With the MLP (669,706 parameters, Adam) Workflow is at the plain loop.",
    "fit": "fit with its defaults records like TrainingSession and keeps every step's loss "
    "and batch size (its step engine's guards and bookkeeping: ~8 us/step in a real loop); "
    "at each epoch end it captures the RNG states, logs the epoch, hands the best weights to "
    "the background writer when the loss improved (most epochs of the tiny model) and every "
    "10 epochs saves a checkpoint synchronously: ~1.2 ms at the epoch boundary plus ~0.8 ms "
    "of GIL lost to the background write in the next steps (bench/epoch_profile.py; "
    "benchmarks-notes.md). Per epoch, so longer epochs hide it; with the MLP fit is at the "
    "plain loop.",
}
BAR_WHY = ("A monitored step runs a Python iterator (two perf_counter reads, one append) and "
           "log() (a type check, a dict lookup and two appends per value): about 20-30 "
           "bytecode-level operations that cost 1-3 us on a slow or loaded VM. It is several "
           "times under tqdm + set_postfix and Keras's Progbar, which format every step.")
STORE_WHY = ("Run.log_scalars takes one dict per step on the calling thread; on a loaded "
             "2-core machine the writer thread's SQLite inserts compete with the caller for "
             "the cores and the GIL. The column path (what TrainingMonitor uses) avoids "
             "per-step objects.")
MONITOR_STORE_WHY = ("This row is the monitor's whole step (its iterator, two clock reads, "
                     "log()'s checks of the 10 values) divided by the 10 scalars logged per "
                     "step; the scalars reach the store as columns (the Run.log_columns row), "
                     "so the store itself adds almost nothing on the caller.")
READ_WHY = "loopwise reads one blob per column from SQLite; the peers decode one row or " \
           "one protobuf event per point in Python."
CHECKPOINT_WHY = ("A crash-safe save writes a temp file, hashes it (XXH3-128) while writing, "
                  "fsyncs it and its folder and renames it: more steps than a plain overwrite; "
                  "on disks where fresh blocks are expensive (thin-provisioned VM disks) the "
                  "difference grows (see benchmarks-notes.md, Checkpoints).")
EXPORTER_STEP_WHY = ("With delivery='process' the training process keeps two threads asleep "
                     "on pipes and a count of the points committed (its CPU per step is the "
                     "record's own: the CPU table); the delivery process reads the record "
                     "(SQLite WAL) itself and runs at nice 10. On a 2-core machine shared with "
                     "other jobs, that process's CPU (MLflow's client and SQLAlchemy, ~100-185 "
                     "us per point) still takes a core some of the time, which shows as wall "
                     "time; with delivery='thread' the same work also holds the GIL (the "
                     "thread rows).")
EXPORTER_RATE_WHY = ("TensorBoard's event files are written by the exporter with array "
                     "operations over whole columns (each tag's bytes built once, the numbers "
                     "laid in, the CRC-32C of all records at once): below 10x add_scalar, look "
                     "at the record's read-back and the delivery process's start in the row's "
                     "time, not at the writing. MLflow's log_batch (1,000 metrics per call, "
                     "MLflow's limit) is where its order of magnitude over log_metric comes "
                     "from; the server's insert of each metric (SQLAlchemy) bounds it.")
KERAS_WHY = ("Keras's own batch loop is ~5x the plain PyTorch loop's step on the tiny model; "
             "the callback's batch hook appends the logs, advances the step and updates the "
             "bar (~1.4 us), inline on a CPU-only machine (async_safe=None: Keras's thread "
             "pool only where the backend has an accelerator), and ends each epoch like the "
             "monitor (summary, event, bar line).")
BACKFILL_WHY = ("An MLflow server takes metrics at the speed of its SQLAlchemy ORM: profiled "
                "(py-spy on the `mlflow server` worker, SQLite store, --workers 1), "
                "SqlAlchemyStore._log_metrics holds ~85% of its time (session flush of one "
                "ORM object per metric, the latest-metrics update, the commit), ~110 ms of "
                "server CPU per 1,000 metrics on this machine (the row's note), whoever sends "
                "them: 1,000,000 metrics cost the server ~110 s of CPU. The exporter keeps "
                "4 log_batch requests of 1,000 in flight, so the server never waits for the "
                "client; beyond that only a faster server (a --workers N, a PostgreSQL "
                "store) or fewer points bring it down. TensorBoard: start-up (~0.4 s of "
                "imports), the record read (~0.3 s a million points) and the events built "
                "with array operations (~0.35 s).")
MEMORY_WHY = ("The RSS added is mostly code: importing loopwise's modules (record, watch, "
              "SQLite, the health detectors, the system sampler with psutil) in a process "
              "that otherwise imports only torch; the window buffers are a few MB.")

UI_WHY = ("The dashboard's first chart waits for its page, uPlot and one API answer (the "
          "2,000-bucket min/max envelope of the whole series, cached per run by the server); "
          "on a loaded 2-core machine the browser, the server and the other servers of the "
          "run share the cores.")


MEDIA_WHY = ("Histograms are binned with NumPy on the run's media thread, which shares the "
             "interpreter (and its GIL) with the training thread; on this 2-core machine a "
             "histogram of 10,000 values costs about 100 us of binning and its SQLite row.")

SECTIONS: list[tuple[str, str, str]] = [
    ("entry_tiny", "Per-step cost of each entry point: tiny model",
     "Linear(32,1), MSE, SGD(lr=0.01), batch 32, a shuffled DataLoader of 3,200 rows (100 "
     "steps per epoch), one torch thread (`torch.set_num_threads(1)`, `OMP_NUM_THREADS=1`). "
     "`bench/entry_points.py` starts a fresh process per configuration and round (the "
     "configurations interleaved, the first one rotating each round). Each process times its "
     "steady state: from the end of its first epoch to the end of its last, read off the "
     "DataLoader's sampler (the time each epoch's last index is drawn), so set-up, imports "
     "and the first epoch are excluded and no framework gets a timing callback; the whole "
     "training call's time is in the note. Every loop reads the loss the way its docs show "
     "(plain loop and TrainingSession: `loss.item()`; TrainingMonitor and Workflow: "
     "`monitor.log({\"loss\": loss})`; Lightning: `self.log`). loopwise entry points run with "
     "their defaults (run record, system sampler every 2 s, bar). Lightning \"bare\": "
     "`logger=False, enable_progress_bar=False, enable_checkpointing=False, "
     "enable_model_summary=False`. Keras: `model.fit(loader, verbose=1)` with "
     "`KERAS_BACKEND=torch`, the same DataLoader. Goal: <= 1.05x the plain loop."),
    ("entry_mlp", "Per-step cost of each entry point: MLP 784-512-512-10",
     "The same configurations on an MLP 784-512-512-10 (ReLU), cross-entropy, Adam(1e-3), batch "
     "128, 6,400 random rows (50 steps per epoch), one torch thread."),
    ("memory_tiny", "Memory added to the training process",
     "RSS (psutil) at the end of training in the same fresh processes as the tiny-model rows; "
     "each row's added memory is the median over the rounds of (its RSS - the plain loop's "
     "RSS in the same round). Goal: TrainingMonitor with its record adds <= 50 MiB."),
    ("trainers_lightning", "PyTorch Lightning: LoopwiseLogger + LoopwiseCallback",
     "`bench/bench_trainers.py`: a tiny MLP (32-64-1) on CPU, one torch thread, one epoch; "
     "wall time from `on_train_start` to `on_train_end` (set-up and teardown outside), the "
     "variants interleaved in one process, every bar to an in-memory stream. Baseline: "
     "Lightning's defaults with `CSVLogger` (its TQDM bar, a log every 50 steps); loopwise "
     "records every step's values (tensors read at the refresh), with its bar, system sampler "
     "and health detectors; the floor is `logger=False` with no bar."),
    ("trainers_hf", "Hugging Face Trainer: LoopwiseCallback",
     "The same script: a 2-layer BERT built from a config (hidden 32), batch 8, "
     "`report_to=\"none\"` with HF's tqdm bar against `LoopwiseCallback.attach` (its bar in "
     "place of HF's, run record, system sampler, health); logging every 500 steps (HF's "
     "default)."),
    ("bar", "Tight-loop cost of a bar with 3 metrics",
     "`bench/bench_monitor.py`: a loop that only builds 3 floats, with each bar updated every "
     "step (all output to an in-memory stream; Keras's Progbar on a terminal-like one). One "
     "process, the variants interleaved. Goal: TrainingMonitor <= 1 us/step above the bare "
     "loop."),
    ("progressbar", "ProgressBar", "`bench/bench_progress.py`: the bar on its own."),
    ("session", "TrainingSession step", "`bench/bench_progress.py`: one session step, floats."),
    ("store_rate", "Scalars logged per second, to disk",
     "`bench/bench_store.py`: rows of 10 keys, one process, the writers interleaved. "
     "TensorBoard is `torch.utils.tensorboard.SummaryWriter.add_scalar`; MLflow runs on a "
     "`sqlite:///` store in a temp folder (`MLFLOW_DISABLE_TELEMETRY=true`) with "
     "`MlflowClient.log_metric` (one SQLite transaction per call, so only a few hundred calls "
     "per round) and `log_batch` (1,000 metrics per call, MLflow's limit). Goal: >= 1M "
     "scalars/s sustained."),
    ("store_call", "Cost per scalar on the calling thread",
     "The same rounds: the time the caller spends per scalar (the rest happens on the "
     "writer's thread, or not at all for the synchronous peers). Goal: <= 0.3 us."),
    ("checkpoint", "Checkpoints",
     "`bench/bench_checkpoint.py`: a state dict of float32 tensors of 8 MiB, saved with "
     "`torch.save` into a file + flush + fsync (the baseline), as raw tensor bytes + fsync "
     "(the disk's floor: no format, no hash), with `save_file` (loopwise's "
     "storage: temp file, XXH3-128 while writing, fsync, `os.replace`, fsync of the folder) and "
     "with `CheckpointManager.save` sync and async (the time the training thread is blocked). "
     "Goals: sync saves >= 0.8x the baseline's throughput (<= 1.25x its time); async "
     "blocking <= 0.2x the baseline's time."),
    ("exporters_step", "Exporters: per-step cost on the training thread",
     "`bench/bench_exporters.py`: a `TrainingMonitor` loop logging 3 floats per step, each step "
     "with a fixed Python busy loop (holding the GIL, like a fast step's own Python side), over "
     "a run with no exporter and with each exporter attached (`exporters=`/`run.add_exporter`), "
     "the variants interleaved round by round in one process. The time is the loop plus "
     "`run.flush()`, what the training thread waits for; every exporter delivers during the "
     "loop and is drained, untimed, before the next variant. MLflow uses a `sqlite:///` store in "
     "a temp folder. TensorBoard and MLflow deliver from a process of their own by default "
     "(`delivery='process'`, following the run's record); their `delivery='thread'` rows "
     "deliver from a thread of the training process. Goal: no cost beyond noise (<= 1.05x)."),
    ("exporters_cpu", "Exporters: CPU of the training process per step",
     "The same loops: `time.process_time()` of the training process (every thread of it, not "
     "the delivery process) per step. It does not count waiting for a core, so it shows what "
     "an exporter adds to the training process itself even on a busy machine."),
    ("exporters_rate", "Exporters: delivered throughput",
     "The same script: points per second each exporter delivers, fed from the record "
     "(`run.log_columns` of one series, timed until `exporter.flush()` says the backend has "
     "them), against its backend's client called the usual way: "
     "`SummaryWriter.add_scalar` per scalar then `flush()`, `MlflowClient.log_metric` per "
     "scalar (one SQLite transaction each: a few hundred per round), `Gauge.labels(...).set` "
     "per scalar. Goal: >= 10x the usual client."),
    ("backfill_1000000", "Backfill of a recorded run: TensorBoard and MLflow",
     "`bench/bench_backfill.py`: one run of 1,000,000 points (one series: the most events "
     "TensorBoard can get from it), mirrored after the fact by `loopwise export RUN --to "
     "tensorboard DIR` and `--to mlflow URI`, each a process of its own timed from start to "
     "exit. MLflow is a real `mlflow server` (SQLite store, `--workers 1`) started by the "
     "script; its baseline is MLflow's own client sending the same points to the same server "
     "(`log_batch` of 1,000, one call after another), and each row notes the server's CPU "
     "per 1,000 metrics. Goals: TensorBoard <= 3 s, MLflow <= 30 s."),
    ("read", "Read a long series, downsampled to 2,000 points",
     "`bench/bench_read.py`: each reader opens the store afresh each round and ends with the "
     "same 2,000-point min/max envelope (`loopwise.record.downsample`). MLflow "
     "(`get_metric_history`, sqlite) and TensorBoard (`EventAccumulator` with "
     "`size_guidance={\"scalars\": 0}`, every point) get fewer points than loopwise's "
     "1,000,000 because writing them takes minutes (~0.2 ms per point through MLflow's "
     "log_batch, ~40 us through SummaryWriter); each is compared with loopwise reading the "
     "same number of points, and the note gives seconds per million points (every reader "
     "here is linear in the points). Goal: >= 10x faster than both."),
    ("verify_wall", "The store's checksums: cost of a read",
     "`bench/bench_verify.py`: `RunReader.series` of a 1,000,000-point series (24 MB of "
     "column chunks) with every chunk's XXH3-64 checked, against the same read without the "
     "check (the baseline), the check on the reading thread (a one-core machine), and the "
     "read before issue 21 (no checksum, no one-point-per-step check). Each opens the store "
     "afresh. A long series is hashed on a second thread while it is unpacked (XXH3 releases "
     "the GIL). Goal: the check costs <= 5 % of the read (<= 1.05x)."),
    ("verify_cpu", "The store's checksums: CPU of a read",
     "The same reads: `time.process_time()` (every thread of the process), which a busy "
     "machine does not inflate: what the check adds as work, wherever it runs."),
    ("ui_peers", "Dashboard first chart against TensorBoard's and MLflow's UIs",
     "`bench/bench_ui_peers.py`: bench_views' series of 1,000,000 points (a spike of 40.0 at "
     "index 654,321) recorded by loopwise and mirrored the way a user would, with `loopwise "
     "export RUN --to tensorboard DIR` and `--to mlflow sqlite:///...` (MLflow gets 100,000 "
     "points with `--quick`). Three real servers on 127.0.0.1 (`loopwise ui`, `tensorboard "
     "--logdir`, `mlflow server --workers 1`), each warm (it has served the series) before "
     "the rounds; headless Chromium (`/usr/bin/chromium`), a fresh browser context per load "
     "(no HTTP cache), viewport 1280x1400; the time is from navigation start to the first "
     "chart drawn with the series (`performance.now()` in the page, polled every frame): "
     "loopwise: uPlot's draw hook; TensorBoard (Time Series tab, `?tagFilter=^loss$`): the "
     "tag's card has its chart canvas and its data-table row, which TensorBoard fills from "
     "the fetched series (the line is drawn by its worker on an OffscreenCanvas, so the "
     "script checks the line's pixels in a screenshot afterwards); MLflow (the run page's "
     "Model metrics tab, and the metric page `#/metric?runs=...`): a plotly line with >= "
     "100 vertices (the run's other charts have 10 points). A page that draws nothing in "
     "60 s is recorded at 60 s with \"did not draw\" in its note. What each one shows, "
     "from the responses it fetched before drawing: loopwise, a min/max envelope of all the "
     "points in 2,000 buckets (the spike kept); TensorBoard, the 1,000 points its reservoir "
     "keeps per scalar tag by default (a random sample: the spike is lost); MLflow's run "
     "page, 320 points sampled by `get-history-bulk-interval`; MLflow's metric page fetches "
     "those 320 points and the whole history in 25,000-point pages of `get-history` (40 "
     "requests for 1,000,000 points, which go on after its first line): the note gives "
     "the points that had arrived when the line appeared and the line's vertices (a few "
     "hundred: the 320-point sample, plotly merging nearly collinear ones). Goal: the "
     "dashboard's first chart in < 1 s."),
    ("media_call", "Histograms: the cost on the calling thread",
     "`bench/bench_media.py`: one large CPU tensor; `Run.log_histogram` only queues a copy "
     "(binning runs on the run's media thread), the others bin on the caller."),
    ("media_rate", "Histograms recorded per second",
     "`bench/bench_media.py`: histograms of a 10,000-value tensor logged back to back, timed "
     "until on disk."),
]

CLI_WHY = ("A view verb's start-up is the interpreter (~20-40 ms), numpy (~60-100 ms on this "
           "machine; show, doctor, report and export need it for their figures), sqlite3 and "
           "loopwise's reader; a loaded machine stretches all of it. On the 2M-step run: doctor "
           "and show read 10,000,000 points (RunReader, ~1 s) before any work; the CSV export "
           "formats 12,000,000 floats (orjson's Ryu, the text repr writes, ~0.1 us each with "
           "the split into cells; repr alone was ~0.4 us), reads the table (~0.8 s) and joins "
           "the rows (~0.4 s) (docs/benchmarks-notes.md).")
RUNS_TABLE_WHY = ("The run table's time is the page, one /api/table answer (every run's row: the "
                  "server stats four files per run and re-reads only the runs that changed) and "
                  "the rows in view; on a busy machine the stats and the JSON of 1,000 rows "
                  "take longer (bench/bench_runs_table.py).")
