"""Metric queries shared by the API and the workers (no FastAPI, no Celery here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, and_, func, select, text, true, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.db.models import MetricLatest, MetricPoint
from backend.db.repositories import pg_arrays
from backend.db.repositories.ids import dialect_name, in_ids

Point = tuple[int, float]
TimedPoint = tuple[int, float, float | None]
#: A point as stored: (run_id, key, step, value, wall_time).
PointRow = tuple[int, str, int, float, float]


def _insert(session: Session) -> Any:
    return pg_insert if dialect_name(session) == "postgresql" else sqlite_insert


def insert_metric_points(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert points, ignoring those already stored: idempotent on (run_id, key, step).

    Also keeps `metric_latest` up to date from the points actually inserted, so a replay changes
    nothing. Returns the number of new points.
    """
    return insert_point_rows(
        session,
        [(r["run_id"], r["key"], r["step"], r["value"], r["wall_time"]) for r in rows],
    )


def insert_point_rows(session: Session, rows: Sequence[PointRow], *, durable: bool = True) -> int:
    """`insert_metric_points` for rows already as `(run_id, key, step, value, wall_time)`.

    This is the ingest hot path (a training run or a script logs thousands of points a second),
    so each dialect gets the form its driver executes fastest; both are exact under concurrent
    writers.

    `durable=False` (PostgreSQL only) lets this transaction's COMMIT return before its WAL
    reaches the disk (`synchronous_commit = off` for this transaction alone): a crash of the
    database's machine can then lose the last fraction of a second of committed batches, whole
    (never part of one, never corrupting anything). It saves a disk flush per batch, and is the
    trade SQLite already makes in WAL mode with `synchronous=NORMAL`. The setting covers the
    whole transaction: pass it only when the transaction writes nothing but metric points.
    """
    if not rows:
        return 0
    if dialect_name(session) == "postgresql":
        return _insert_points_postgresql(session, rows, durable=durable)
    return _insert_points_sqlite(session, rows)


# PostgreSQL: one run's batch is its id and four arrays bound to one short, constant statement
# (the server caches its plan; a multi-row VALUES of thousands of placeholders is re-parsed per
# batch and cost more than the insert itself). The arrays travel in binary, each framed by
# `pg_arrays` in one `struct` call, and the server reads them without parsing text (array
# literals built in Python cost more than the insert). The points inserted are folded into
# metric_latest by the same statement: one round trip per batch, whatever its size.
#
# `ON CONFLICT DO NOTHING` makes each row a speculative insertion (an index probe, the insert,
# then a confirmation record in the WAL): twice the cost of a plain insert of 1,000 points (8.2
# vs 4.5 ms measured with psql). A logging script appends, so `_PG_APPENDING` inserts the
# points past their key's latest stored step (metric_latest, kept by this same statement)
# plainly; only the others (a replay, points logged out of order) take the conflict-checking
# insert. Should another writer store one of the appended points first, the statement fails
# with a unique violation and the caller runs it with `_PG_CHECKED`, where every row is checked.
_PG_INSERT_POINTS = """
WITH incoming AS (
    SELECT %(run_id)b::integer AS run_id, t.* FROM unnest(
        %(key)b::varchar[],
        %(step)b::integer[],
        %(value)b::double precision[],
        %(wall_time)b::double precision[]
    ) AS t(key, step, value, wall_time)
),
{inserted},
summary AS (
    SELECT
        run_id,
        key,
        max(step) AS step,
        min(value) AS min_value,
        max(value) AS max_value,
        count(*) AS count
    FROM inserted
    GROUP BY run_id, key
),
folded AS (
    INSERT INTO metric_latest AS old
        (run_id, key, step, value, wall_time, min_value, max_value, count)
    -- The value and time of each group's top step, joined back: `array_agg(... ORDER BY)`
    -- sorted every group's points twice and cost as much as the insert.
    SELECT s.run_id, s.key, s.step, i.value, i.wall_time, s.min_value, s.max_value, s.count
    FROM summary AS s
    JOIN inserted AS i ON i.run_id = s.run_id AND i.key = s.key AND i.step = s.step
    ORDER BY s.run_id, s.key
    ON CONFLICT (run_id, key) DO UPDATE SET
        step = CASE WHEN excluded.step > old.step THEN excluded.step ELSE old.step END,
        value = CASE WHEN excluded.step > old.step THEN excluded.value ELSE old.value END,
        wall_time = CASE
            WHEN excluded.step > old.step THEN excluded.wall_time ELSE old.wall_time END,
        min_value = LEAST(old.min_value, excluded.min_value),
        max_value = GREATEST(old.max_value, excluded.max_value),
        count = old.count + excluded.count
    RETURNING 1
)
SELECT coalesce(sum(count), 0){durability} FROM summary
"""
_PG_CHECKED = """
inserted AS (
    INSERT INTO metric_point (run_id, key, step, value, wall_time)
    SELECT run_id, key, step, value, wall_time FROM incoming
    ON CONFLICT (run_id, key, step) DO NOTHING
    RETURNING run_id, key, step, value, wall_time
)"""
_PG_APPENDING = """
-- One index lookup per (run, key) of the batch: a join with metric_latest would scan all of it.
bounds AS MATERIALIZED (
    SELECT k.run_id, k.key, coalesce(
        (SELECT l.step FROM metric_latest AS l WHERE l.run_id = k.run_id AND l.key = k.key), -1
    ) AS latest_step
    FROM (SELECT DISTINCT run_id, key FROM incoming) AS k
),
split AS (
    SELECT i.run_id, i.key, i.step, i.value, i.wall_time, i.step > b.latest_step AS past
    FROM incoming AS i
    JOIN bounds AS b ON b.run_id = i.run_id AND b.key = i.key
),
appended AS (
    INSERT INTO metric_point (run_id, key, step, value, wall_time)
    SELECT run_id, key, step, value, wall_time FROM split WHERE past
    RETURNING run_id, key, step, value, wall_time
),
replayed AS (
    INSERT INTO metric_point (run_id, key, step, value, wall_time)
    SELECT run_id, key, step, value, wall_time FROM split WHERE NOT past
    ON CONFLICT (run_id, key, step) DO NOTHING
    RETURNING run_id, key, step, value, wall_time
),
inserted AS (SELECT * FROM appended UNION ALL SELECT * FROM replayed)"""
# `SET LOCAL synchronous_commit = off` as part of the same statement (no extra round trip): an
# aggregate without GROUP BY yields exactly one row, so the call runs once, whatever was inserted.
_FAST_COMMIT = ", set_config('synchronous_commit', 'off', true)"
_PG_STATEMENTS = {
    (appending, durable): _PG_INSERT_POINTS.format(
        inserted=_PG_APPENDING if appending else _PG_CHECKED,
        durability="" if durable else _FAST_COMMIT,
    )
    for appending in (True, False)
    for durable in (True, False)
}
_UNIQUE_VIOLATION = "23505"


def _insert_points_postgresql(session: Session, rows: Sequence[PointRow], *, durable: bool) -> int:
    by_run: dict[int, list[PointRow]] = {}
    for row in rows:
        by_run.setdefault(row[0], []).append(row)
    # Runs in id order: concurrent writers then take metric_latest's row locks in one order.
    return sum(
        _insert_run_points_postgresql(session, run_id, run_rows, durable=durable)
        for run_id, run_rows in sorted(by_run.items())
    )


def _insert_run_points_postgresql(
    session: Session, run_id: int, rows: Sequence[PointRow], *, durable: bool
) -> int:
    _, keys, steps, values, wall_times = zip(*rows, strict=True)
    params = {
        "run_id": run_id,  # a scalar: each array costs a dump and a parse
        "key": pg_arrays.varchar_array(keys),
        "step": pg_arrays.int4_array(steps),
        "value": pg_arrays.float8_array(values),
        "wall_time": pg_arrays.float8_array(wall_times),
    }
    connection = session.connection()
    dbapi_connection = connection.connection.dbapi_connection
    pg_arrays.enable(dbapi_connection)  # type: ignore[arg-type]
    # The appending statement can fail on a race (see above); only outside a transaction does
    # that failure leave nothing behind to roll back (the ingest route runs in autocommit).
    if dbapi_connection.autocommit:  # type: ignore[union-attr]
        try:
            return _run_insert(connection, _PG_STATEMENTS[True, durable], params)
        except IntegrityError as exc:
            if getattr(exc.orig, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
    return _run_insert(connection, _PG_STATEMENTS[False, durable], params)


def _run_insert(connection: Connection, statement: str, params: dict[str, Any]) -> int:
    return int(connection.exec_driver_sql(statement, params).scalar_one())


# SQLite: the driver's executemany of one prepared statement runs in C, far faster than any
# multi-row statement built in Python. It reports how many rows were inserted but not which.
_SQLITE_INSERT_POINTS = (
    "INSERT INTO metric_point (run_id, key, step, value, wall_time) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, key, step) DO NOTHING"
)


def _insert_points_sqlite(session: Session, rows: Sequence[PointRow]) -> int:
    connection = session.connection()
    inserted = connection.exec_driver_sql(_SQLITE_INSERT_POINTS, rows).rowcount
    if inserted == len(rows):
        # Every point is new (the usual case): fold them all into metric_latest.
        upsert_metric_latest(session, rows)
    elif inserted > 0:
        # A partial replay: which points were new is unknown, so the touched keys' summaries
        # are recomputed from the stored points (exact, and rare enough that its cost is moot).
        refresh_metric_latest(session, {(row[0], row[1]) for row in rows})
    return inserted


# One row per (run, key) of a batch, folded into the stored summary. Written once as SQL both
# dialects accept (CASE rather than LEAST/GREATEST, which SQLite lacks): building and compiling
# an upsert per batch cost more than running it.
_UPSERT_LATEST = text(
    """
INSERT INTO metric_latest (run_id, key, step, value, wall_time, min_value, max_value, count)
VALUES (:run_id, :key, :step, :value, :wall_time, :min_value, :max_value, :count)
ON CONFLICT (run_id, key) DO UPDATE SET
    step = CASE WHEN excluded.step > metric_latest.step
        THEN excluded.step ELSE metric_latest.step END,
    value = CASE WHEN excluded.step > metric_latest.step
        THEN excluded.value ELSE metric_latest.value END,
    wall_time = CASE WHEN excluded.step > metric_latest.step
        THEN excluded.wall_time ELSE metric_latest.wall_time END,
    min_value = CASE WHEN excluded.min_value < metric_latest.min_value
        THEN excluded.min_value ELSE metric_latest.min_value END,
    max_value = CASE WHEN excluded.max_value > metric_latest.max_value
        THEN excluded.max_value ELSE metric_latest.max_value END,
    count = metric_latest.count + excluded.count
"""
)


def upsert_metric_latest(session: Session, points: Iterable[PointRow]) -> None:
    """Fold new points `(run_id, key, step, value, wall_time)` into `metric_latest`."""
    groups: dict[tuple[int, str], list[PointRow]] = {}
    for point in points:
        group = groups.get((point[0], point[1]))
        if group is None:
            groups[(point[0], point[1])] = [point]
        else:
            group.append(point)
    summaries = []
    # Sorted: concurrent writers then take row locks in one order (no deadlock on PostgreSQL).
    for (run_id, key), group in sorted(groups.items()):
        _, _, step, value, wall_time = max(group, key=itemgetter(2))
        values = [point[3] for point in group]
        summaries.append(
            {
                "run_id": run_id,
                "key": key,
                "step": step,
                "value": value,
                "wall_time": wall_time,
                "min_value": min(values),
                "max_value": max(values),
                "count": len(group),
            }
        )
    if summaries:
        session.connection().execute(_UPSERT_LATEST, summaries)


def refresh_metric_latest(session: Session, run_keys: Iterable[tuple[int, str]]) -> None:
    """Recompute the `metric_latest` rows of `(run_id, key)` pairs from all their stored points.

    Exact whatever happened before (replays, concurrent writers), at the cost of reading each
    key's whole history: for the rare batches that were partly stored already.
    """
    by_run: dict[int, set[str]] = {}
    for run_id, key in run_keys:
        by_run.setdefault(run_id, set()).add(key)
    point = MetricPoint.__table__.c
    for run_id, keys in sorted(by_run.items()):
        summary = (
            select(
                point.run_id,
                point.key,
                func.max(point.step).label("top"),
                func.min(point.value).label("min_value"),
                func.max(point.value).label("max_value"),
                func.count().label("count"),
            )
            .where(point.run_id == run_id, point.key.in_(sorted(keys)))
            .group_by(point.run_id, point.key)
            .subquery()
        )
        source = (
            select(
                point.run_id,
                point.key,
                point.step,
                point.value,
                point.wall_time,
                summary.c.min_value,
                summary.c.max_value,
                summary.c.count,
            )
            .join(
                summary,
                and_(
                    point.run_id == summary.c.run_id,
                    point.key == summary.c.key,
                    point.step == summary.c.top,
                ),
            )
            # SQLite reads `ON CONFLICT` after a join as the join's ON without a WHERE here.
            .where(true())
        )
        names = ["run_id", "key", "step", "value", "wall_time", "min_value", "max_value", "count"]
        statement = _insert(session)(MetricLatest).from_select(names, source)
        statement = statement.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={name: statement.excluded[name] for name in names[2:]},
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
    point = MetricPoint.__table__.c
    # Only the columns that tell groups apart: building Python objects for each row's run id
    # and key costs more than the scan (a one-run, one-key history reads three columns).
    by_run, by_key = len(run_ids) > 1, len(keys) > 1
    group_columns = [c for c, wanted in ((point.run_id, by_run), (point.key, by_key)) if wanted]
    rows: Sequence[Any] = (
        session.connection()
        .execute(
            select(*group_columns, point.step, point.value, point.wall_time)
            .where(in_ids(session, point.run_id, run_ids), point.key.in_(list(keys)))
            .order_by(point.run_id, point.key, point.step)
        )
        .all()  # one fetchall: iterating a result fetches row by row
    )
    if by_run and by_key:
        for (run_id, key), group in groupby(rows, key=itemgetter(0, 1)):
            result[run_id][key] = [(s, v, w) for _, _, s, v, w in group]
    elif by_run or by_key:
        for label, group in groupby(rows, key=itemgetter(0)):
            points = [(s, v, w) for _, s, v, w in group]
            if by_run:
                result[label][keys[0]] = points
            else:
                result[run_ids[0]][label] = points
    else:
        result[run_ids[0]][keys[0]] = [(s, v, w) for s, v, w in rows]
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
    query = select(MetricLatest).where(in_ids(session, MetricLatest.run_id, run_ids))
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
    rows = session.connection().execute(
        select(MetricLatest.run_id, MetricLatest.key, MetricLatest.value).where(
            in_ids(session, MetricLatest.run_id, run_ids), MetricLatest.key.in_(list(keys))
        )
    )
    for run_id, key, value in rows:
        result[run_id][key] = value
    return result


def points_exist(session: Session, run_id: int, keys_steps: Sequence[tuple[str, int]]) -> int:
    """How many of `(key, step)` are already stored for `run_id` (used by tests and ingest)."""
    if not keys_steps:
        return 0
    count = session.scalar(
        select(func.count())
        .select_from(MetricPoint)
        .where(
            MetricPoint.run_id == run_id,
            tuple_(MetricPoint.key, MetricPoint.step).in_(list(keys_steps)),
        )
    )
    return int(count or 0)
