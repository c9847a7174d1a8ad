"""Mirrors of the run record: TensorBoard, MLflow, Prometheus (see ``docs/exporters.md``).

Each backend is an optional extra imported only inside its module, when an exporter is made:
``pip install 'loopwise[tensorboard]'``, ``'loopwise[mlflow]'``, ``'loopwise[prometheus]'``.
Public names are imported lazily (as in :mod:`loopwise`), so that the command line, which
registers the ``export`` verb through :mod:`loopwise.export.cli`, starts quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopwise.utils.lazy import lazy_names

if TYPE_CHECKING:
    from loopwise.export.backfill import backfill
    from loopwise.export.base import DeliveryStats, Exporter
    from loopwise.export.mlflow import MLflowExporter
    from loopwise.export.prometheus import PrometheusExporter
    from loopwise.export.tensorboard import TensorBoardExporter

_PUBLIC = {
    "DeliveryStats": "loopwise.export.base",
    "Exporter": "loopwise.export.base",
    "MLflowExporter": "loopwise.export.mlflow",
    "PrometheusExporter": "loopwise.export.prometheus",
    "TensorBoardExporter": "loopwise.export.tensorboard",
    "backfill": "loopwise.export.backfill",
}

__all__ = ["DeliveryStats", "Exporter", "MLflowExporter", "PrometheusExporter",
           "TensorBoardExporter", "backfill"]


__getattr__, __dir__ = lazy_names(__name__, _PUBLIC, listed=__all__)
