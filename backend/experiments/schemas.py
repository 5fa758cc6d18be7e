"""Request and response models of experiments (shared groups of runs) and their members."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MemberRole = Literal["owner", "editor", "viewer"]


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=20_000)


class ExperimentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=20_000)


class ExperimentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    owner_id: int | None
    created_at: datetime
    archived_at: datetime | None
    run_count: int = 0


class ExperimentList(BaseModel):
    items: list[ExperimentOut]
    total: int
    limit: int
    offset: int


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: MemberRole = "editor"


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    experiment_id: int
    user_id: int
    role: str
    added_at: datetime
