"""Response models of artifacts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class ArtifactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    kind: str
    name: str
    size: int
    sha256: str | None
    created_at: datetime
