"""Response models of the cross-run metrics API (comparison views and tables)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.runs.schemas import LatestOut, MetricPointOut


class SeriesOut(BaseModel):
    runs: dict[int, dict[str, list[MetricPointOut]]] = Field(
        description="run id -> key -> points ordered by step (downsampled to max_points)."
    )


class LatestTable(BaseModel):
    runs: dict[int, dict[str, LatestOut]]


class KeysOut(BaseModel):
    keys: list[str]
