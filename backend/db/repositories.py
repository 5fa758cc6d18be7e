"""Queries shared by the API and the workers (no FastAPI, no Celery here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from backend.db.models import MetricPoint


def insert_metric_points(session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Insert points, ignoring those already stored: idempotent on (run_id, key, step)."""
    if not rows:
        return
    bind = session.get_bind()
    dialect = bind.dialect.name if isinstance(bind, Engine) else bind.engine.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(MetricPoint).values(list(rows))
    session.execute(statement.on_conflict_do_nothing(index_elements=["run_id", "key", "step"]))


def metric_series(
    session: Session, run_id: int, keys: Iterable[str]
) -> dict[str, list[tuple[int, float]]]:
    wanted = list(keys)
    series: dict[str, list[tuple[int, float]]] = {key: [] for key in wanted}
    rows = session.execute(
        select(MetricPoint.key, MetricPoint.step, MetricPoint.value)
        .where(MetricPoint.run_id == run_id, MetricPoint.key.in_(wanted))
        .order_by(MetricPoint.key, MetricPoint.step)
    )
    for key, step, value in rows:
        series[key].append((step, value))
    return series


def metric_keys(session: Session, run_id: int) -> list[str]:
    rows = session.execute(
        select(MetricPoint.key)
        .where(MetricPoint.run_id == run_id)
        .distinct()
        .order_by(MetricPoint.key)
    )
    return [key for (key,) in rows]
