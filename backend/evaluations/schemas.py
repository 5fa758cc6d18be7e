"""Response models of evaluations."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class EvaluationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    benchmark: str
    split: str
    metric: str
    value: float
    n: int | None
    details_artifact: str | None
    created_at: datetime
