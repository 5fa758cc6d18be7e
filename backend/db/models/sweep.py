"""Sweeps: ablation designs (factors, levels, seeds) and the runs generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow

DESIGN_KINDS = ("full", "fractional", "one_at_a_time")


class Sweep(Base):
    __tablename__ = "sweep"
    __table_args__ = (
        CheckConstraint(
            "design IN ('full', 'fractional', 'one_at_a_time', 'template')", name="design_valid"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiment.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    design: Mapped[str] = mapped_column(String(32))
    # A built-in template (`paper-table`) and its options, when the sweep is one (design
    # 'template'); factor designs leave both empty.
    template: Mapped[str | None] = mapped_column(String(32))
    template_options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    resolution: Mapped[int | None] = mapped_column(Integer)
    base_preset: Mapped[str | None] = mapped_column(String(64))
    base_config: Mapped[dict[str, Any]] = mapped_column(JSON)
    factors: Mapped[list[Any]] = mapped_column(JSON)
    seeds: Mapped[list[Any]] = mapped_column(JSON)
    design_table: Mapped[list[Any]] = mapped_column(JSON, default=list)
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    run_count: Mapped[int] = mapped_column(Integer, default=0)
    estimated_gpu_hours: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
