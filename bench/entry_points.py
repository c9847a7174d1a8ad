"""Per-step cost of each loopwise entry point against a plain PyTorch loop, Lightning and Keras.

Two models: ``tiny`` (Linear(32,1), MSE, SGD, batch 32, 100 steps per epoch) and ``mlp``
(784-512-512-10, cross-entropy, Adam, batch 128, 50 steps per epoch); a shuffled DataLoader,
one torch thread, on the CPU (CUDA hidden, so that fit's and Keras's automatic device choice
does the same work as the others). Every configuration runs in a fresh process
(``python bench/entry_points.py --worker CONFIG MODEL EPOCHS OUT``); the driver runs the
configurations interleaved, one process of each per round, the first one rotating. A worker
times its steady state: from the end of the first epoch (set-up, imports and first-epoch
warm-up excluded) to the end of the last one, read off the DataLoader's shuffling sampler
(it notes the time each epoch's last index is drawn), so no framework gets a timing callback
on its step path. It also reports the whole training call's time and the process's RSS at the
end (psutil) and at its peak, and, beside wall time, the CPU time per step of the training
thread (``time.thread_time``) and of the whole process (every thread: the record's writer, the
system sampler, background checkpoint writes): on a loaded machine wall time mostly measures
the wait for a core, CPU time what each entry point adds. ``--long 3000`` also times 3,000-step
epochs of the tiny model (3 epochs, the last 2 timed).

Configurations: plain loop (baseline); TrainingMonitor (one per epoch, defaults: run record,
system sampler, bar); TrainingSession (defaults); Workflow (a Trainer using self.track);
fit (defaults, the model's optimizer); Lightning Trainer with a CSV logger and its bar, and
bare (no logger, bar, checkpointing or model summary); Keras fit with its bar (torch backend);
Keras fit with ``LoopwiseCallback`` (its defaults, ``verbose=0``), whose added microseconds
are also given against Keras fit with its bar (the Keras user's loop).

Each ratio has beside it the added microseconds per step (the median of the rounds'
differences: each round's processes ran side by side), for every table: wall time, the
training thread's CPU time (``time.thread_time``) and the whole process's, with 100-step
epochs and, with ``--long``, with long epochs.

Run: .venv/bin/python bench/entry_points.py [--quick] [--model tiny|mlp]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Table, arguments, emit, interleaved, rounds_of

CONFIGS = {
    "plain": "plain PyTorch loop (baseline)",
    "monitor": "TrainingMonitor (defaults)",
    "session": "TrainingSession (defaults)",
    "workflow": "Workflow (Trainer + self.track)",
    "fit": "fit (defaults)",
    "lightning": "Lightning Trainer (CSV logger, bar)",
    "lightning_bare": "Lightning Trainer, bare",
    "keras": "Keras fit (torch backend, bar)",
    "keras_loopwise": "Keras fit + LoopwiseCallback (defaults, verbose=0)",
}
# what an entry point's added microseconds are also given against (its own framework's loop)
FRAMEWORK_BASE = {"keras_loopwise": "keras"}
MODELS = {"tiny": {"rows": 3_200, "batch": 32, "epochs": 11, "quick": 4},
          "mlp": {"rows": 6_400, "batch": 128, "epochs": 6, "quick": 3}}


# ---------------------------------------------------------------- worker (one configuration)

def _data(model: str) -> tuple[Any, Any, Any, Any]:
    import torch

    spec = MODELS[model]
    torch.manual_seed(0)
    if model == "tiny":
        x = torch.randn(spec["rows"], 32)
        y = x[:, :4].sum(dim=1, keepdim=True)
        net = torch.nn.Linear(32, 1)
        loss_fn: Any = torch.nn.MSELoss()
        make_opt: Any = lambda params: torch.optim.SGD(params, lr=0.01)  # noqa: E731
    else:
        x = torch.randn(spec["rows"], 784)
        y = torch.randint(0, 10, (spec["rows"],))
        net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                  torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                  torch.nn.Linear(512, 10))
        loss_fn = torch.nn.CrossEntropyLoss()
        make_opt = lambda params: torch.optim.Adam(params, lr=1e-3)  # noqa: E731
    return x, y, net, (loss_fn, make_opt)


def _loader(x: Any, y: Any, batch: int, ends: list[tuple[float, float, float]]) -> Any:
    import torch
    from torch.utils.data import DataLoader, RandomSampler, TensorDataset

    class StampedSampler(RandomSampler):
        """A shuffling sampler that notes when each epoch's last index is drawn (the last
        batch's fetch: frameworks that count their steps never exhaust the iterator)."""

        def __iter__(self) -> Iterator[int]:
            last = len(self)
            for i, index in enumerate(super().__iter__(), 1):
                if i == last:  # wall, training-thread CPU, whole-process CPU
                    ends.append((time.perf_counter(), time.thread_time(),
                                 time.process_time()))
                yield index

    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=batch, sampler=StampedSampler(data,
                      generator=torch.Generator().manual_seed(0)))


def _train(config: str, model: str, epochs: int, loader: Any, net: Any, loss_fn: Any,
           make_opt: Any) -> None:
    if config == "plain":
        opt = make_opt(net.parameters())
        for _ in range(epochs):
            total = 0.0
            for x, y in loader:
                opt.zero_grad()
                loss = loss_fn(net(x), y)
                loss.backward()
                opt.step()
                total += loss.item()
    elif config == "monitor":
        from loopwise import TrainingMonitor

        opt = make_opt(net.parameters())
        for epoch in range(epochs):
            monitor = TrainingMonitor(loader, f"epoch {epoch + 1}")
            for x, y in monitor:
                opt.zero_grad()
                loss = loss_fn(net(x), y)
                loss.backward()
                opt.step()
                monitor.log({"loss": loss})
    elif config == "session":
        from loopwise import TrainingSession

        opt = make_opt(net.parameters())
        session = TrainingSession(model, epochs, len(loader), 0)
        session.start_training()
        for epoch in range(1, epochs + 1):
            session.start_epoch(epoch)
            total = 0.0
            for step, (x, y) in enumerate(loader, 1):
                opt.zero_grad()
                loss = loss_fn(net(x), y)
                loss.backward()
                opt.step()
                total += loss.item()
                session.update_training_progress(step, total / step, 0.0)
            session.finish_training_epoch()
        session.close()
    elif config == "workflow":
        from loopwise import Trainer, Workflow

        class Bench(Trainer):
            def __init__(self) -> None:
                self.args = {"model": model}

            def setup(self) -> None:
                self.model = net
                self.optimizer = make_opt(net.parameters())

            def train_loop(self) -> dict[str, float]:
                monitor = self.track(loader, "train")
                for x, y in monitor:
                    self.optimizer.zero_grad()
                    loss = loss_fn(self.model(x), y)
                    loss.backward()
                    self.optimizer.step()
                    monitor.log({"loss": loss})
                return {"train_loss": monitor.averages()["loss"]}

            def evaluate(self) -> dict[str, float]:
                return {}

        Workflow(Bench(), "experiments", epochs=epochs, name="bench").run()
    elif config == "fit":
        from loopwise import fit
        from loopwise.train.fit.config import TrainingConfig

        fit(net, loader, loss_fn=loss_fn, optimizer=make_opt(net.parameters()),
            config=TrainingConfig(epochs=epochs, batch_size=loader.batch_size))
    elif config in ("lightning", "lightning_bare"):
        _lightning(config, epochs, loader, net, loss_fn, make_opt)
    elif config in ("keras", "keras_loopwise"):
        _keras(model, epochs, loader, loopwise=config == "keras_loopwise")
    else:
        raise SystemExit(f"unknown configuration {config!r}; one of {', '.join(CONFIGS)}")


def _lightning(config: str, epochs: int, loader: Any, net: Any, loss_fn: Any,
               make_opt: Any) -> None:
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def training_step(self, batch: Any, index: int) -> Any:
            x, y = batch
            loss = loss_fn(self.net(x), y)
            self.log("loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self) -> Any:
            return make_opt(self.parameters())

    if config == "lightning":
        options: dict[str, Any] = {"logger": CSVLogger("lightning_logs")}
    else:
        options = {"logger": False, "enable_progress_bar": False,
                   "enable_checkpointing": False, "enable_model_summary": False}
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1,
                         default_root_dir=".", **options)
    trainer.fit(Module(), loader)


def _keras(model: str, epochs: int, loader: Any, *, loopwise: bool = False) -> None:
    import keras

    if model == "tiny":
        net = keras.Sequential([keras.Input((32,)), keras.layers.Dense(1)])
        net.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    else:
        net = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation="relu"),
                                keras.layers.Dense(512, activation="relu"),
                                keras.layers.Dense(10)])
        net.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    if loopwise:  # loopwise's bar, record, system sampler and health instead of Keras's bar
        from loopwise.keras import LoopwiseCallback

        net.fit(loader, epochs=epochs, verbose=0, callbacks=[LoopwiseCallback()])
    else:
        net.fit(loader, epochs=epochs, verbose=1)


def worker(config: str, model: str, epochs: int, out: str, rows: int) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import psutil
    import torch

    torch.set_num_threads(1)
    MODELS[model]["rows"] = rows
    x, y, net, (loss_fn, make_opt) = _data(model)
    ends: list[tuple[float, float, float]] = []
    loader = _loader(x, y, MODELS[model]["batch"], ends)
    os.chdir(os.path.dirname(os.path.abspath(out)))  # the driver's temp dir: runs, logs
    t0 = time.perf_counter()
    _train(config, model, epochs, loader, net, loss_fn, make_opt)
    total = time.perf_counter() - t0
    rss = psutil.Process().memory_info().rss
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if len(ends) < 2:
        raise SystemExit(f"{config}: the sampler saw {len(ends)} complete epochs; need 2")
    steps = (len(ends) - 1) * len(loader)
    first, end = ends[0], ends[-1]
    result = {"step_s": (end[0] - first[0]) / steps, "thread_cpu_s": (end[1] - first[1]) / steps,
              "process_cpu_s": (end[2] - first[2]) / steps, "total_s": total,
              "epochs": len(ends), "rss": rss, "peak": peak}
    with open(out, "w") as fh:
        json.dump(result, fh)


# ---------------------------------------------------------------- driver

def spawn(config: str, model: str, epochs: int, rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        env = dict(os.environ, KERAS_BACKEND="torch", KERAS_HOME=os.path.join(tmp, "keras"),
                   MPLCONFIGDIR=os.path.join(tmp, "mpl"), MPLBACKEND="Agg",
                   PYTHONPATH=os.pathsep.join(filter(None, [_src(), os.environ.get(
                       "PYTHONPATH")])), OMP_NUM_THREADS="1",
                   CUDA_VISIBLE_DEVICES="")  # the same device (CPU) for every configuration
        proc = subprocess.run([sys.executable, __file__, "--worker", config, model, str(epochs),
                               out, str(rows)],
                              capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout)[-2000:]
            raise RuntimeError(f"{config} on {model} failed (exit {proc.returncode}):\n{tail}")
        with open(out) as fh:
            result: dict[str, Any] = json.load(fh)
            return result


def _src() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def available(config: str) -> bool:
    import importlib.util

    need = {"lightning": "pytorch_lightning", "lightning_bare": "pytorch_lightning",
            "keras": "keras", "keras_loopwise": "keras"}.get(config)
    return need is None or importlib.util.find_spec(need) is not None


def measure(model: str, rounds: int, quick: bool, configs: list[str],
            steps_per_epoch: int | None = None
            ) -> tuple[list[Table], dict[str, list[dict[str, Any]]]]:
    """The wall-time table, then the CPU time of the training thread and of the whole
    process per step (what each entry point adds to the training process even where the
    machine is loaded and wall time mostly measures the wait for a core)."""
    spec = MODELS[model]
    rows = spec["rows"] if steps_per_epoch is None else steps_per_epoch * spec["batch"]
    per_epoch = rows // spec["batch"]
    epochs = spec["quick" if quick else "epochs"]
    if steps_per_epoch is not None:  # long epochs: 3 are enough (2 timed)
        epochs = min(epochs, 3)
    print(f"{model}: {len(configs)} configurations x {rounds} rounds, {epochs} epochs of "
          f"{per_epoch} steps each", flush=True)
    samples = interleaved({c: (lambda c=c: spawn(c, model, epochs, rows)) for c in configs},
                          rounds=rounds, progress=True)
    steps = (epochs - 1) * per_epoch
    suffix = "" if steps_per_epoch is None else f"_{per_epoch}"
    what = f"{model} model, {per_epoch}-step epochs ({steps} steps timed per process, " \
           f"{rounds} fresh processes per configuration)"
    tables = []
    for key, title, unit in (
            ("step_s", "Per-step cost, wall time", "us/step"),
            ("thread_cpu_s", "Per-step CPU time of the training thread", "us CPU/step"),
            ("process_cpu_s", "Per-step CPU time of the whole training process (every thread)",
             "us CPU/step")):
        prefix = {"step_s": "entry", "thread_cpu_s": "entry_thread_cpu",
                  "process_cpu_s": "entry_process_cpu"}[key]
        table = Table(f"{prefix}_{model}{suffix}", f"{title}, {what}", unit,
                      baseline=CONFIGS["plain"], ratio_label="x plain loop")
        base = [r[key] * 1e6 for r in samples["plain"]] if "plain" in samples else None
        for config in configs:
            values = [r[key] * 1e6 for r in samples[config]]
            note = ""
            if base is not None and config != "plain":
                added = statistics.median(v - b for v, b in zip(values, base))
                note = f"{added:+.1f} us/step (median of the rounds' differences)"
                own = FRAMEWORK_BASE.get(config)
                if own in samples:  # also against its own framework's loop
                    over = statistics.median(v - r[key] * 1e6 for v, r
                                             in zip(values, samples[own]))
                    ratio = statistics.median(v / (r[key] * 1e6) for v, r
                                              in zip(values, samples[own]))
                    note += f"; vs {CONFIGS[own]}: {over:+.1f} us/step, {ratio:.3f}x"
            if key == "step_s":
                whole = statistics.median(r["total_s"] for r in samples[config])
                note = "; ".join(filter(None, [note, f"whole training call {whole:.2f} s"]))
            table.add(CONFIGS[config], values, note=note)
        tables.append(table)
    missing = [CONFIGS[c] for c in CONFIGS if c not in configs and not available(c)]
    if missing:
        tables[0].notes.append("not measured (not installed): " + ", ".join(missing))
    return tables, samples


def memory_table(samples: dict[str, list[dict[str, Any]]], model: str) -> Table:
    mib = 1024 * 1024
    table = Table(f"memory_{model}", f"Memory of the training process, {model} model (RSS at "
                  "the end of training, fresh processes)", "MiB RSS",
                  baseline=CONFIGS["plain"], ratio_label="x plain loop")
    base = [r["rss"] / mib for r in samples["plain"]]
    for config, results in samples.items():
        rss = [r["rss"] / mib for r in results]
        added = statistics.median(a - b for a, b in zip(rss, base))
        peak = statistics.median(r["peak"] / mib for r in results)
        table.add(CONFIGS[config], rss, note=f"+{added:.0f} MiB over the plain loop "
                  f"(median of rounds); peak RSS {peak:.0f} MiB")
    return table


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        config, model, epochs, out, rows = sys.argv[2:7]
        worker(config, model, int(epochs), out, int(rows))
        return
    parser = arguments(__doc__, rounds=5)
    parser.add_argument("--model", choices=[*MODELS, "both"], default="both")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma-separated configurations (default: all)")
    parser.add_argument("--long", type=int, default=None, metavar="STEPS",
                        help="also time the tiny model with epochs of STEPS steps (3 epochs; "
                             "the issue's second goal: 3000)")
    args = parser.parse_args()
    rounds = rounds_of(args)
    configs = [c for c in args.configs.split(",") if available(c)]
    tables = []
    for model in (MODELS if args.model == "both" else [args.model]):
        measured, samples = measure(model, rounds, args.quick, configs)
        tables.extend(measured)
        if model == "tiny":
            tables.append(memory_table(samples, model))
    if args.long is not None:
        tables.extend(measure("tiny", rounds, args.quick, configs, args.long)[0])
    emit(tables, args)


if __name__ == "__main__":
    main()
