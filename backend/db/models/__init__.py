"""All ORM models; importing this module registers every table on `Base.metadata`."""

from backend.db.models.experiment import Experiment, ExperimentMember
from backend.db.models.metric import MetricLatest, MetricPoint
from backend.db.models.results import (
    ARTIFACT_KINDS,
    EVENT_LEVELS,
    Artifact,
    Evaluation,
    RunEvent,
)
from backend.db.models.run import (
    COMPONENT_FLAGS,
    FINISHED_STATUSES,
    RUN_STATUSES,
    Run,
    RunTag,
)
from backend.db.models.sweep import DESIGN_KINDS, Sweep
from backend.db.models.user import ROLES, ApiToken, User

__all__ = [
    "ARTIFACT_KINDS",
    "COMPONENT_FLAGS",
    "DESIGN_KINDS",
    "EVENT_LEVELS",
    "FINISHED_STATUSES",
    "ROLES",
    "RUN_STATUSES",
    "ApiToken",
    "Artifact",
    "Evaluation",
    "Experiment",
    "ExperimentMember",
    "MetricLatest",
    "MetricPoint",
    "Run",
    "RunEvent",
    "RunTag",
    "Sweep",
    "User",
]
