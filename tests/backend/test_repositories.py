"""Repository functions the workers call, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from backend.db.models import Artifact, Evaluation, MetricLatest, MetricPoint, RunEvent
from backend.db.repositories import (
    add_artifact,
    add_evaluation,
    append_run_event,
    insert_metric_points,
    latest_metrics,
)
from backend.db.session import session_factory, session_scope
from backend.metrics.service import open_ingest
from tests.backend.factories import make_run


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_database_migrated"
    return str(request.getfixturevalue(name))


def points(run_id: int, key: str, values: dict[int, float]) -> list[dict[str, object]]:
    return [
        {"run_id": run_id, "key": key, "step": s, "value": v, "wall_time": float(s)}
        for s, v in values.items()
    ]


def test_metric_latest_follows_the_highest_step_and_extremes(db_url: str) -> None:
    with session_scope(db_url) as session:
        run_id = make_run(session).id
    with session_scope(db_url) as session:
        assert insert_metric_points(session, points(run_id, "loss/total", {1: 3.0, 3: 1.0})) == 2
    with session_scope(db_url) as session:
        # an older step arrives late; a replay of step 3 with another value changes nothing
        new = insert_metric_points(session, points(run_id, "loss/total", {2: 5.0, 3: 9.0}))
        assert new == 1
    with session_scope(db_url) as session:
        latest = latest_metrics(session, [run_id])[run_id]["loss/total"]
        assert (latest.step, latest.value) == (3, 1.0)
        assert (latest.min_value, latest.max_value, latest.count) == (1.0, 5.0, 3)
        assert session.scalar(select(func.count()).select_from(MetricPoint)) == 3
        assert session.scalar(select(func.count()).select_from(MetricLatest)) == 1


def test_events_artifacts_evaluations_are_recorded_idempotently(db_url: str) -> None:
    with session_scope(db_url) as session:
        run_id = make_run(session).id
        append_run_event(session, run_id, "info", "started")
        append_run_event(session, run_id, "error", "x" * 50_000)
        add_artifact(session, run_id, "checkpoint", "ckpt/step-3", "file:///a", 10, "ab" * 32)
        again = add_artifact(session, run_id, "checkpoint", "ckpt/step-3", "file:///b", 20)
        assert (again.uri, again.size) == ("file:///b", 20)
        add_evaluation(session, run_id, "scienceqa", "accuracy", 0.5, n=10)
        ev = add_evaluation(session, run_id, "scienceqa", "accuracy", 0.75, n=12)
        assert (ev.value, ev.n) == (0.75, 12)
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(Artifact)) == 1
        assert session.scalar(select(func.count()).select_from(Evaluation)) == 1
        events = session.scalars(select(RunEvent).order_by(RunEvent.id)).all()
        assert [e.level for e in events] == ["info", "error"]
        assert len(events[1].message) == 20_000
    with session_scope(db_url) as session, pytest.raises(ValueError, match="level"):
        append_run_event(session, run_id, "loud", "no")


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_metric_latest_stays_exact_over_overlapping_replays(db_url: str, autocommit: bool) -> None:
    """Batches mixing runs and keys, partly replayed, in any order: metric_latest always equals
    a summary of the stored points (the fast ingest paths fold only what they inserted). On
    PostgreSQL in autocommit (as the ingest route runs) points past their key's latest step
    take the plain insert and the others the conflict-checking one."""
    import random

    rng = random.Random(7)
    with session_scope(db_url) as session:
        run_ids = [make_run(session).id for _ in range(2)]
    stored: dict[tuple[int, str, int], float] = {}
    for _ in range(12):
        batch: dict[tuple[int, str, int], float | int] = {}
        for _ in range(rng.randint(1, 60)):
            key = (rng.choice(run_ids), rng.choice(["a", "b/c"]), rng.randint(0, 80))
            # ints and floats mixed, as a script may log them
            batch.setdefault(key, rng.choice([rng.randint(-5, 5), rng.uniform(-10, 10)]))
        rows = [
            {"run_id": r, "key": k, "step": s, "value": v, "wall_time": 1000.0 + s}
            for (r, k, s), v in batch.items()
        ]
        expected_new = sum(1 for point in batch if point not in stored)
        for point, value in batch.items():
            stored.setdefault(point, float(value))
        with session_scope(db_url) as session:
            if autocommit:
                open_ingest(session)
            assert insert_metric_points(session, rows) == expected_new
    with session_scope(db_url) as session:
        latest = latest_metrics(session, run_ids)
        assert session.scalar(select(func.count()).select_from(MetricPoint)) == len(stored)
    for run_id in run_ids:
        for key in ("a", "b/c"):
            series = {s: v for (r, k, s), v in stored.items() if (r, k) == (run_id, key)}
            if not series:
                assert key not in latest[run_id]
                continue
            row = latest[run_id][key]
            top = max(series)
            assert (row.step, row.value, row.wall_time) == (top, series[top], 1000.0 + top)
            assert (row.min_value, row.max_value) == (min(series.values()), max(series.values()))
            assert row.count == len(series)


def test_points_round_trip_exactly_whatever_their_key_and_value(db_url: str) -> None:
    """Keys with quotes, braces, commas or backslashes and floats at the edges of the double
    range come back exactly as logged (PostgreSQL receives them as array literals)."""
    keys = ['a"b', "c\\d", "{e,f}", "NULL", "g h", "ünï/cødé", "x" * 200]
    values = [0.1, 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 1 / 3, 12345678901234567.0]
    with session_scope(db_url) as session:
        run_id = make_run(session).id
        rows = [
            {"run_id": run_id, "key": key, "step": i, "value": value, "wall_time": 1.5e9 + i / 7}
            for key in keys
            for i, value in enumerate(values)
        ]
        assert insert_metric_points(session, rows) == len(rows)
    with session_scope(db_url) as session:
        stored = session.execute(
            select(
                MetricPoint.key, MetricPoint.step, MetricPoint.value, MetricPoint.wall_time
            ).where(MetricPoint.run_id == run_id)
        ).all()
        latest = latest_metrics(session, [run_id])[run_id]
    expected = {(r["key"], r["step"], r["value"], r["wall_time"]) for r in rows}
    assert set(map(tuple, stored)) == expected
    assert set(latest) == set(keys)
    assert all(latest[k].value == values[-1] and latest[k].count == len(values) for k in keys)


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_points_for_a_missing_run_are_refused_whole(db_url: str, autocommit: bool) -> None:
    """metric_point has no foreign key (migration 0007): the same write's metric_latest fold
    refuses a run that does not exist, and none of the batch stays."""
    from sqlalchemy.exc import IntegrityError

    with session_scope(db_url) as session:
        if autocommit:
            open_ingest(session)
        with pytest.raises(IntegrityError):
            insert_metric_points(session, points(987_654, "loss/total", {1: 1.0, 2: 2.0}))
        session.rollback()
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(MetricPoint)) == 0
        assert session.scalar(select(func.count()).select_from(MetricLatest)) == 0


def test_deleting_a_run_deletes_its_points(db_url: str) -> None:
    from sqlalchemy import text

    with session_scope(db_url) as session:
        gone, kept = make_run(session).id, make_run(session).id
    with session_scope(db_url) as session:
        insert_metric_points(session, points(gone, "loss/total", {1: 1.0, 2: 2.0}))
        insert_metric_points(session, points(kept, "loss/total", {1: 1.0}))
    with session_scope(db_url) as session:
        session.execute(text("DELETE FROM run WHERE id = :id"), {"id": gone})
    with session_scope(db_url) as session:
        remaining = session.execute(select(MetricPoint.run_id).distinct()).scalars().all()
        assert remaining == [kept]
        assert session.scalars(select(MetricLatest.run_id)).all() == [kept]


@pytest.mark.postgres
def test_an_appended_batch_racing_another_writer_for_its_steps_stores_each_point_once(
    pg_database_migrated: str,
) -> None:
    """The appending insert trusts metric_latest's step; a writer that stored one of the batch's
    steps after that was read makes it fail on the key, and the batch is retried point by point:
    nothing doubled, nothing lost, metric_latest exact."""
    url = pg_database_migrated
    with session_scope(url) as session:
        run_id = make_run(session).id
    other = session_factory(url)()
    outcome: dict[str, object] = {}
    try:
        # Another writer's uncommitted step 5: an insert of step 5 waits for its transaction.
        assert insert_metric_points(other, points(run_id, "a", {5: 50.0})) == 1

        def append() -> None:
            try:
                with session_scope(url) as session:
                    open_ingest(session)
                    outcome["inserted"] = insert_metric_points(
                        session, points(run_id, "a", {s: float(s) for s in range(10)})
                    )
            except Exception as exc:  # reported to the test thread below
                outcome["error"] = exc

        writer = threading.Thread(target=append)
        writer.start()
        writer.join(0.5)  # it reads no latest step and blocks on step 5's key
        other.commit()
        writer.join(30)
    finally:
        other.close()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["inserted"] == 9
    with session_scope(url) as session:
        stored = dict(
            session.execute(
                select(MetricPoint.step, MetricPoint.value).where(MetricPoint.run_id == run_id)
            ).all()
        )
        latest = latest_metrics(session, [run_id])[run_id]["a"]
    assert stored == {**{s: float(s) for s in range(10)}, 5: 50.0}
    assert (latest.step, latest.value, latest.count) == (9, 9.0, 10)
    assert (latest.min_value, latest.max_value) == (0.0, 50.0)
