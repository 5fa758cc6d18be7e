"""Response models of the runs API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str | None
    status: str
    preset: str | None
    base_model: str
    dataset: str
    seed: int
    queue: str
    attempt: int
    worker: str | None
    cancel_requested: bool
    step: int
    total_steps: int
    progress: float
    error: str | None
    config: dict[str, Any]
    config_hash: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None


class RunList(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class MetricPointOut(BaseModel):
    step: int
    value: float


class RunMetrics(BaseModel):
    run_id: int
    metrics: dict[str, list[MetricPointOut]] = Field(
        description="For each requested key, its points ordered by step."
    )
