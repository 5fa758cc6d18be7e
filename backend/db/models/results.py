"""What a run leaves behind: evaluations, artifacts (files) and its event log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow

ARTIFACT_KINDS = ("checkpoint", "adapter", "eval_report", "log", "samples", "traceback", "other")
EVENT_LEVELS = ("debug", "info", "warning", "error")


class Evaluation(Base):
    __tablename__ = "evaluation"
    __table_args__ = (UniqueConstraint("run_id", "benchmark", "metric", "split"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    benchmark: Mapped[str] = mapped_column(String(64), index=True)
    split: Mapped[str] = mapped_column(String(64), default="test")
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    n: Mapped[int | None] = mapped_column(Integer)
    details_artifact: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Artifact(Base):
    __tablename__ = "artifact"
    __table_args__ = (
        UniqueConstraint("run_id", "name"),
        CheckConstraint(
            "kind IN ('checkpoint', 'adapter', 'eval_report', 'log', 'samples', 'traceback', "
            "'other')",
            name="kind_valid",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    uri: Mapped[str] = mapped_column(String(2000))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RunEvent(Base):
    __tablename__ = "run_event"
    __table_args__ = (
        CheckConstraint("level IN ('debug', 'info', 'warning', 'error')", name="level_valid"),
        Index("ix_run_event_run_id_id", "run_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    level: Mapped[str] = mapped_column(String(16), default="info")
    message: Mapped[str] = mapped_column(Text)
