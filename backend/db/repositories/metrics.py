"""Metric queries shared by the API and the workers (no FastAPI, no Celery here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, case, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from backend.db.models import MetricLatest, MetricPoint

Point = tuple[int, float]
TimedPoint = tuple[int, float, float | None]


def _dialect(session: Session) -> str:
    bind = session.get_bind()
    return bind.dialect.name if isinstance(bind, Engine) else bind.engine.dialect.name


def _insert(session: Session) -> Any:
    return pg_insert if _dialect(session) == "postgresql" else sqlite_insert


def insert_metric_points(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert points, ignoring those already stored: idempotent on (run_id, key, step).

    Also keeps `metric_latest` up to date from the points actually inserted, so a replay changes
    nothing. Returns the number of new points.
    """
    if not rows:
        return 0
    table = MetricPoint.__table__
    # One cached statement executed with many parameter sets: SQLAlchemy batches it into
    # multi-row INSERTs ("insertmanyvalues") without recompiling per batch.
    statement = (
        _insert(session)(table)
        .on_conflict_do_nothing(index_elements=["run_id", "key", "step"])
        .returning(table.c.run_id, table.c.key, table.c.step, table.c.value, table.c.wall_time)
    )
    params = [
        {
            "run_id": row["run_id"],
            "key": row["key"],
            "step": row["step"],
            "value": row["value"],
            "wall_time": row["wall_time"],
        }
        for row in rows
    ]
    new = [tuple(row) for row in session.connection().execute(statement, params)]
    upsert_metric_latest(session, new)
    return len(new)


def upsert_metric_latest(
    session: Session, points: Iterable[tuple[int, str, int, float, float]]
) -> None:
    """Fold new points `(run_id, key, step, value, wall_time)` into `metric_latest`."""
    summary: dict[tuple[int, str], dict[str, Any]] = {}
    for run_id, key, step, value, wall_time in points:
        entry = summary.get((run_id, key))
        if entry is None:
            summary[(run_id, key)] = {
                "run_id": run_id,
                "key": key,
                "step": step,
                "value": value,
                "wall_time": wall_time,
                "min_value": value,
                "max_value": value,
                "count": 1,
            }
            continue
        if step > entry["step"]:
            entry.update(step=step, value=value, wall_time=wall_time)
        entry["min_value"] = min(entry["min_value"], value)
        entry["max_value"] = max(entry["max_value"], value)
        entry["count"] += 1
    if not summary:
        return
    statement = _insert(session)(MetricLatest).values(list(summary.values()))
    new = statement.excluded
    table = MetricLatest.__table__.c
    newer = new.step > table.step
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={
            "step": case((newer, new.step), else_=table.step),
            "value": case((newer, new.value), else_=table.value),
            "wall_time": case((newer, new.wall_time), else_=table.wall_time),
            "min_value": case(
                (new.min_value < table.min_value, new.min_value), else_=table.min_value
            ),
            "max_value": case(
                (new.max_value > table.max_value, new.max_value), else_=table.max_value
            ),
            "count": table.count + new.count,
        },
    )
    session.execute(statement)


def metric_series_many(
    session: Session, run_ids: Sequence[int], keys: Sequence[str]
) -> dict[int, dict[str, list[TimedPoint]]]:
    """Series of several runs in one query: `{run_id: {key: [(step, value, wall_time), ...]}}`,
    ordered by step (the wall time serves the time axis of comparisons)."""
    result: dict[int, dict[str, list[TimedPoint]]] = {rid: {k: [] for k in keys} for rid in run_ids}
    if not run_ids or not keys:
        return result
    rows = session.execute(
        select(
            MetricPoint.run_id,
            MetricPoint.key,
            MetricPoint.step,
            MetricPoint.value,
            MetricPoint.wall_time,
        )
        .where(MetricPoint.run_id.in_(list(run_ids)), MetricPoint.key.in_(list(keys)))
        .order_by(MetricPoint.run_id, MetricPoint.key, MetricPoint.step)
    )
    for run_id, key, step, value, wall_time in rows:
        result[run_id][key].append((step, value, wall_time))
    return result


def metric_keys(session: Session, run_id: int) -> list[str]:
    """Keys a run has logged (read from `metric_latest`: one row per key)."""
    rows = session.execute(
        select(MetricLatest.key).where(MetricLatest.run_id == run_id).order_by(MetricLatest.key)
    )
    return [key for (key,) in rows]


def latest_metrics(
    session: Session, run_ids: Sequence[int], keys: Sequence[str] | None = None
) -> dict[int, dict[str, MetricLatest]]:
    """`{run_id: {key: MetricLatest}}` for table views; all keys unless `keys` is given."""
    result: dict[int, dict[str, MetricLatest]] = {rid: {} for rid in run_ids}
    if not run_ids:
        return result
    query = select(MetricLatest).where(MetricLatest.run_id.in_(list(run_ids)))
    if keys:
        query = query.where(MetricLatest.key.in_(list(keys)))
    for row in session.scalars(query):
        result[row.run_id][row.key] = row
    return result


def latest_values(
    session: Session, run_ids: Sequence[int], keys: Sequence[str]
) -> dict[int, dict[str, float]]:
    """`{run_id: {key: latest value}}`: the lean read behind run tables."""
    result: dict[int, dict[str, float]] = {rid: {} for rid in run_ids}
    if not run_ids or not keys:
        return result
    rows = session.execute(
        select(MetricLatest.run_id, MetricLatest.key, MetricLatest.value).where(
            MetricLatest.run_id.in_(list(run_ids)), MetricLatest.key.in_(list(keys))
        )
    )
    for run_id, key, value in rows:
        result[run_id][key] = value
    return result


def points_exist(session: Session, run_id: int, keys_steps: Sequence[tuple[str, int]]) -> int:
    """How many of `(key, step)` are already stored for `run_id` (used by tests and ingest)."""
    if not keys_steps:
        return 0
    rows = session.execute(
        select(MetricPoint.id).where(
            MetricPoint.run_id == run_id,
            tuple_(MetricPoint.key, MetricPoint.step).in_(list(keys_steps)),
        )
    )
    return len(rows.all())
