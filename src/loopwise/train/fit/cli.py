"""``loopwise fit DATA``: train the reference MLP on a data file, from the command line.

DATA is ``.h5``/``.hdf5`` (datasets X and Y), ``.npz`` (arrays X and Y) or ``.csv`` (a header;
the target column is ``--target``, default ``target`` or else the last column). The task is
inferred from the target (integer labels with few distinct values or strings: classification,
cross-entropy, accuracy shown; anything else: regression, MSE) and ``--task`` overrides it.
Inputs are standardised (regression targets too); the statistics are saved with the run.

Bad data (missing file, dataset or column, X/Y length mismatch, NaN, no rows, a single class)
is reported before training, and the command exits with status 2. Ctrl-C saves a checkpoint and
exits with 130; the same command then resumes. A finished run with the same parameters is not
trained again (``--force`` does).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from loopwise.utils.text import printable, printable_lines

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_fit_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``fit`` subcommand to ``subparsers`` (from ``parser.add_subparsers()``)."""
    doc = (__doc__ or "").split("\n\n")
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "fit", help="train an MLP on a .h5/.npz/.csv file, with the full loopwise record",
        description="\n\n".join(doc[:2]), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", metavar="DATA", help="a .h5/.hdf5, .npz or .csv file")
    parser.add_argument("--target", metavar="COL", help="the target: a CSV column, or the "
                        "dataset/array name in .h5/.npz (default Y)")
    parser.add_argument("--inputs", metavar="NAME", default="X",
                        help="the inputs' dataset/array name in .h5/.npz (default X)")
    parser.add_argument("--task", choices=("auto", "classification", "regression"),
                        default="auto", help="default: inferred from the target")
    parser.add_argument("--config", metavar="JSON", help="a TrainingConfig file; the options "
                        "below override it")
    parser.add_argument("--hidden-size", type=int, help="MLP width (default 256)")
    parser.add_argument("--num-layers", type=int, help="MLP hidden layers (default 3)")
    parser.add_argument("--batch-size", type=int, help="batch size (default 32)")
    parser.add_argument("--epochs", type=int, help="maximum epochs (default 100)")
    parser.add_argument("--lr", type=float, help="learning rate (default 0.001)")
    parser.add_argument("--amp", action="store_true", default=None,
                        help="mixed precision (bf16 on the CPU, fp16 on CUDA)")
    parser.add_argument("--name", help="run and file name (default: the data file's name)")
    parser.add_argument("--root", default="runs", help="folder of the runs (default ./runs)")
    parser.add_argument("--force", action="store_true",
                        help="train again even if a finished run has the same parameters")
    parser.set_defaults(func=run_fit)
    return parser


def default_name(data: str) -> str:
    """A valid run name from the data file's name (``my data.csv`` -> ``my_data``)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(data).stem).strip("._") or "model"
    return stem[:100]


def _config(args: argparse.Namespace) -> Any:
    from loopwise.train.fit.config import TrainingConfig

    cfg = TrainingConfig.load(args.config) if args.config else TrainingConfig()
    overrides = {"hidden_size": args.hidden_size, "num_layers": args.num_layers,
                 "batch_size": args.batch_size, "epochs": args.epochs,
                 "learning_rate": args.lr, "use_mixed_precision": args.amp}
    cfg.update(**{k: v for k, v in overrides.items() if v is not None})
    cfg.update(model_name=args.name or default_name(args.data))
    return cfg


def run_fit(args: argparse.Namespace, *, out: TextIO | None = None,
            err: TextIO | None = None) -> int:
    """Run ``loopwise fit`` for parsed ``args``; returns the exit status."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    import torch

    from loopwise.checkpoint.errors import CheckpointError
    from loopwise.train.fit.data import DataError, load_table
    from loopwise.train.fit.prep import Standardization, setup_training
    from loopwise.train.reference import train_model_result
    from loopwise.train.step.nonfinite import NonFiniteLossError

    try:
        cfg = _config(args)
        task = None if args.task == "auto" else args.task
        table = load_table(args.data, target=args.target, inputs=args.inputs, task=task)
        regression = table.task == "regression"
        stats = Standardization.fit(table.X, table.Y if regression else None)
        X = torch.from_numpy(stats.transform_x(table.X))
        Y = torch.from_numpy(stats.transform_y(table.Y) if regression else table.Y)
        loaders = setup_training(X, Y, cfg.batch_size, cfg.val_split, cfg.test_split,
                                 seed=cfg.seed, num_workers=cfg.num_workers)
    except (DataError, ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        print(f"loopwise fit: error: {printable_lines(exc)}", file=err)
        return EXIT_BAD_INPUT
    source = Path(args.data).resolve()
    described = (f"{len(table.X)} rows, {table.n_features} inputs, {table.task}"
                 + (f" ({len(table.classes)} classes)" if not regression else
                    f" ({table.n_outputs} outputs)"))
    print(printable(f"loopwise fit: {source.name}: {described}; target {table.target!r}"),
          file=out)
    metadata = {"data": str(source), "data_bytes": source.stat().st_size,
                "data_mtime": source.stat().st_mtime, "task": table.task,
                "target": table.target, "classes": table.classes,
                "features": table.feature_names}
    loss_fn = torch.nn.MSELoss() if regression else torch.nn.CrossEntropyLoss()
    try:
        result = train_model_result(*loaders, table.n_features, table.n_outputs, cfg,
                                    loss_fn=loss_fn, root=args.root, force=args.force,
                                    normalization=stats, metadata=metadata)
    except KeyboardInterrupt as exc:
        print(f"loopwise fit: {printable(exc or 'interrupted')}; run the same command again "
              "to resume", file=err)
        return EXIT_INTERRUPTED
    except NonFiniteLossError as exc:
        print(f"loopwise fit: {printable(exc)}", file=err)
        return EXIT_FAILED
    except (ValueError, FileExistsError, CheckpointError) as exc:
        # CheckpointError: a resume found no usable checkpoint (corrupt, or one holding
        # pickled objects, which is never loaded)
        print(f"loopwise fit: error: {printable_lines(exc)}", file=err)
        return EXIT_BAD_INPUT
    _report(result, out)
    return EXIT_OK


def _report(result: Any, out: TextIO) -> None:
    files = result.files
    what = {"skipped": "already trained with these parameters (--force trains again)",
            "stopped": f"stopped early: {result.stop_reason}",
            "finished": "finished"}[result.status]
    print(f"\nRun:          {printable(result.run_path)}  ({printable(what)})", file=out)
    if result.best_epoch is not None and result.best_value is not None:
        print(f"Best:         {result.monitor} {result.best_value:.4f} at epoch "
              f"{result.best_epoch} of {result.epochs}", file=out)
    if result.test_loss is not None:
        acc = (f", accuracy {result.test_accuracy * 100:.2f}%"
               if result.test_accuracy is not None else "")
        print(f"Test:         loss {result.test_loss:.4f}{acc}", file=out)
    for label, key in (("Best model", "best_model"), ("Loss plot", "loss_plot"),
                       ("Predictions", "predictions_plot"), ("Log", "log"),
                       ("Results", "results")):
        if key in files:
            print(f"{label + ':':<14}{printable(files[key])}", file=out)
