"""A training run: its config, lifecycle and bookkeeping for the worker that executes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db.base import Base, UTCDateTime, utcnow

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATUSES = ("succeeded", "failed", "cancelled")
#: The five UniSD components: each is a config block with `enabled` and an indexed run column.
COMPONENT_FLAGS = ("agreement", "ema", "contrastive", "feature_matching", "clipping")


class Run(Base):
    __tablename__ = "run"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name="status_valid",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    config_hash: Mapped[str] = mapped_column(String(64), index=True)
    preset: Mapped[str | None] = mapped_column(String(64), index=True)
    base_model: Mapped[str] = mapped_column(String(500), index=True)
    dataset: Mapped[str] = mapped_column(String(64), index=True)
    seed: Mapped[int] = mapped_column(BigInteger)  # RunConfig seeds go up to 2^32 - 1
    queue: Mapped[str] = mapped_column(String(32), default="cpu")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Execution by the workers: attempts the reaper may start, when the run (re)entered the
    # queue (a retry's backoff sets it in the future), its Celery task, live throughput and ETA.
    max_attempts: Mapped[int] = mapped_column(Integer, default=3, server_default=text("3"))
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    task_id: Mapped[str | None] = mapped_column(String(64))
    tokens_per_s: Mapped[float | None] = mapped_column(Float)
    eta_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Ownership and grouping.
    experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiment.id", ondelete="SET NULL"), index=True
    )
    sweep_id: Mapped[int | None] = mapped_column(
        ForeignKey("sweep.id", ondelete="SET NULL"), index=True
    )
    design_point: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    parent_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("run.id", ondelete="SET NULL"), index=True
    )

    # The five component switches, copied from the config so lists can filter on them.
    agreement: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), index=True
    )
    ema: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), index=True)
    contrastive: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), index=True
    )
    feature_matching: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), index=True
    )
    clipping: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), index=True
    )

    # Reproducibility and notes.
    gpus: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    code_version: Mapped[str | None] = mapped_column(String(64))
    env: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    notes: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    tag_rows: Mapped[list[RunTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="RunTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]


class RunTag(Base):
    __tablename__ = "run_tag"

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
