"""Queries shared by the API and the workers (no FastAPI, no Celery here)."""

from backend.db.repositories.metrics import (
    PointRow,
    insert_metric_points,
    insert_point_rows,
    latest_metrics,
    latest_values,
    metric_keys,
    metric_series_many,
    refresh_metric_latest,
    upsert_metric_latest,
)
from backend.db.repositories.results import add_artifact, add_evaluation, append_run_event

__all__ = [
    "PointRow",
    "add_artifact",
    "add_evaluation",
    "append_run_event",
    "insert_metric_points",
    "insert_point_rows",
    "latest_metrics",
    "latest_values",
    "metric_keys",
    "metric_series_many",
    "refresh_metric_latest",
    "upsert_metric_latest",
]
