"""Metrics: read one run's or many runs' series (downsampled), latest values, batch ingest."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db import repositories
from backend.db.models import MetricLatest, Run
from backend.db.repositories.ids import dialect_name
from backend.errors import AppError
from backend.metrics.downsample import Point, downsample
from backend.runs.schemas import LatestOut, MetricPointIn

MAX_RUNS_PER_QUERY = 500
MAX_KEYS_PER_QUERY = 100


class TooMany(AppError):
    status_code = 422
    code = "validation_error"


def parse_list(text: str, *, field: str, limit: int) -> list[str]:
    items = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if len(items) > limit:
        raise TooMany(
            f"at most {limit} values in {field}",
            fields=[{"path": field, "message": f"at most {limit} values"}],
        )
    return items


def parse_ids(text: str, *, field: str = "run_ids") -> list[int]:
    ids = []
    for item in parse_list(text, field=field, limit=MAX_RUNS_PER_QUERY):
        # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
        if not (item.isascii() and item.isdigit()) or not 0 < int(item) < 2**31:
            raise TooMany(
                f"{field} must be comma-separated run ids",
                fields=[{"path": field, "message": f"not a run id: {item[:40]!r}"}],
            )
        ids.append(int(item))
    return ids


def existing_run_ids(session: Session, run_ids: Sequence[int]) -> list[int]:
    found = set(
        session.scalars(select(Run.id).where(Run.id.in_(list(run_ids)), Run.deleted_at.is_(None)))
    )
    return [rid for rid in run_ids if rid in found]


def stored_series(
    session: Session, run_ids: Sequence[int], keys: Sequence[str]
) -> dict[int, dict[str, list[Point]]]:
    """`{run_id: {key: [(step, value, wall_time), ...]}}` ordered by step, in one query."""
    return repositories.metric_series_many(session, run_ids, keys)


def run_series(
    session: Session, run_id: int, keys: list[str], max_points: int | None
) -> dict[str, list[Point]]:
    wanted = keys or repositories.metric_keys(session, run_id)
    series = stored_series(session, [run_id], wanted)[run_id]
    return {key: downsample(points, max_points) for key, points in series.items()}


def many_series(
    session: Session, run_ids: list[int], keys: list[str], max_points: int | None
) -> dict[int, dict[str, list[Point]]]:
    ids = existing_run_ids(session, run_ids)
    series = stored_series(session, ids, keys)
    return {
        rid: {key: downsample(points, max_points) for key, points in by_key.items()}
        for rid, by_key in series.items()
    }


def points_json(points: Sequence[Point]) -> list[dict[str, float | int | None]]:
    """API points of a (downsampled) series, in `MetricPointOut`'s shape; the wall time is the
    one stored with the step. Plain dicts for `json_response`: a series can hold hundreds of
    thousands of points, and a model per point cost more than reading them."""
    return [{"step": s, "value": v, "wall_time": w} for s, v, w in points]


def latest_table(
    session: Session, run_ids: list[int], keys: list[str]
) -> dict[int, dict[str, LatestOut]]:
    ids = existing_run_ids(session, run_ids)
    rows = repositories.latest_metrics(session, ids, keys or None)
    return {rid: {k: latest_out(m) for k, m in by_key.items()} for rid, by_key in rows.items()}


def latest_out(row: MetricLatest) -> LatestOut:
    return LatestOut(
        step=row.step, value=row.value, min=row.min_value, max=row.max_value, count=row.count
    )


def keys_of(session: Session, run_ids: list[int]) -> list[str]:
    rows = session.scalars(
        select(MetricLatest.key).where(MetricLatest.run_id.in_(run_ids)).distinct()
    )
    return sorted(rows)


def open_ingest(session: Session) -> None:
    """Start an ingest request's unit of work; call it before the request's first query.

    On PostgreSQL its statements run in autocommit: each is its own transaction, which spares
    the BEGIN and COMMIT round trips (half of the request's round trips, and on a loaded
    machine each one waits for the database's process and then ours to be scheduled). Nothing
    is lost by it: the points and their `metric_latest` fold are one statement (atomic by
    itself), and the reads before it (the token, the run) need no snapshot shared with it.
    SQLite keeps its transaction: there the batch is many statements that must commit as one.
    """
    if dialect_name(session) == "postgresql":
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def ingest(
    session: Session, run_id: int, points: Sequence[MetricPointIn], *, durable: bool = True
) -> int:
    """Store a batch of points (see `insert_point_rows` for `durable`); the new points' count."""
    now = time.time()
    rows: list[repositories.PointRow] = [
        (
            run_id,
            p["key"],
            p["step"],
            p["value"],
            now if (wall := p.get("wall_time")) is None else wall,
        )
        for p in points
    ]
    if len({(row[1], row[2]) for row in rows}) < len(rows):
        # Within one batch, the first point of a (key, step) wins, as it would across
        # batches: read backwards, the first point is the last one written to its slot.
        rows = list({(row[1], row[2]): row for row in reversed(rows)}.values())
    return repositories.insert_point_rows(session, rows, durable=durable)
