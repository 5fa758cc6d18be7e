"""All ORM models; importing this module registers every table on `Base.metadata`."""

from backend.db.models.metric import MetricPoint
from backend.db.models.run import FINISHED_STATUSES, RUN_STATUSES, Run

__all__ = ["FINISHED_STATUSES", "RUN_STATUSES", "MetricPoint", "Run"]
