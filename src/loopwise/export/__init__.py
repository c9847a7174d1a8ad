"""Mirrors of the run record: TensorBoard, MLflow, Prometheus (see ``docs/exporters.md``).

Each backend is an optional extra imported only inside its module, when an exporter is made:
``pip install 'loopwise[tensorboard]'``, ``'loopwise[mlflow]'``, ``'loopwise[prometheus]'``.
"""

from loopwise.export.backfill import backfill
from loopwise.export.base import DeliveryStats, Exporter
from loopwise.export.mlflow import MLflowExporter
from loopwise.export.prometheus import PrometheusExporter
from loopwise.export.tensorboard import TensorBoardExporter

__all__ = ["DeliveryStats", "Exporter", "MLflowExporter", "PrometheusExporter",
           "TensorBoardExporter", "backfill"]
