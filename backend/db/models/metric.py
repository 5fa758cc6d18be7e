"""Metric points: one value per (run, key, step), and each key's latest value for fast tables."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base


class MetricPoint(Base):
    """One value per (run, key, step): that triple is the primary key.

    No surrogate id: every read and the idempotent ingest go through (run, key, step), so a
    second index and a sequence only cost time on each insert. On SQLite the table is
    WITHOUT ROWID: the rows live in the primary key's B-tree, a run's series side by side.

    No foreign key to `run` (migration 0007): checked per point, it was half the cost of a
    batch. The ingest statement writes `metric_latest` too, whose foreign key refuses a batch
    for a missing run, and a trigger on `run` deletes a deleted run's points.
    """

    __tablename__ = "metric_point"
    __table_args__ = ({"sqlite_with_rowid": False},)

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[float] = mapped_column(Float)
    wall_time: Mapped[float] = mapped_column(Float)


class MetricLatest(Base):
    """(run, key) -> the point with the highest step, plus the extremes seen so far."""

    __tablename__ = "metric_latest"

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    step: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    wall_time: Mapped[float] = mapped_column(Float)
    min_value: Mapped[float] = mapped_column(Float)
    max_value: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer, default=0)
