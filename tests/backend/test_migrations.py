"""Migrations: upgrade -> downgrade -> upgrade on SQLite and PostgreSQL; models match them."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from backend.db.base import Base
from backend.db.migrate import alembic_config, downgrade, upgrade
from backend.db.session import make_engine

EXPECTED_TABLES = {
    "user",
    "api_token",
    "experiment",
    "experiment_member",
    "run",
    "run_tag",
    "sweep",
    "metric_point",
    "metric_latest",
    "evaluation",
    "artifact",
    "run_event",
}


#: A run row with only the columns every revision since 0001 requires (raw SQL: no ORM model
#: matches an old revision).
INSERT_BARE_RUN = (
    "INSERT INTO run (status, config, config_hash, base_model, dataset, seed, queue, attempt, "
    "cancel_requested, step, total_steps, progress, created_at) VALUES ('queued', '{}', 'h', "
    "'m', 'd', 1, 'cpu', 0, false, 0, 1, 0, '2026-11-27 00:00:00')"
)


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def assert_models_match(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def round_trip(url: str) -> None:
    upgrade(url)
    assert tables(url) >= EXPECTED_TABLES
    assert_models_match(url)
    downgrade(url, "base")
    assert tables(url) == set()
    upgrade(url)
    assert tables(url) >= EXPECTED_TABLES


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1


def test_round_trip_sqlite(tmp_path) -> None:
    round_trip(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_round_trip_postgresql(pg_database: str) -> None:
    round_trip(pg_database)


def test_existing_runs_survive_the_accounts_migration(tmp_path) -> None:
    """0001 -> head keeps rows (component flags default to false); head -> 0001 keeps them too."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "0001")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(INSERT_BARE_RUN))
        upgrade(url)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT agreement, clipping, gpus, deleted_at FROM run")).one()
        assert tuple(row) == (0, 0, 1, None)
        downgrade(url, "0001")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM run")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_metric_points_survive_the_rekeying_both_ways(
    kind: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    """0005 -> 0006 keeps every point under its new (run_id, key, step) key; back to 0005 they
    get ids again and the unique constraint still refuses a duplicate."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    url = (
        f"sqlite:///{tmp_path / 'm.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("pg_database")
    )
    upgrade(url, "0005")
    engine = make_engine(url)
    points = [(1, "loss/total", s, s / 2, 1000.0 + s) for s in range(5)] + [
        (1, 'odd "key"', 0, -1.0, 999.5)
    ]
    try:
        with engine.begin() as conn:
            conn.execute(text(INSERT_BARE_RUN))
            for row in points:
                conn.execute(
                    text(
                        "INSERT INTO metric_point (run_id, key, step, value, wall_time) "
                        "VALUES (:r, :k, :s, :v, :w)"
                    ),
                    dict(zip("rksvw", row, strict=True)),
                )
        select_points = text(
            "SELECT run_id, key, step, value, wall_time FROM metric_point ORDER BY key, step"
        )
        upgrade(url, "0006")
        with engine.connect() as conn:
            assert sorted(map(tuple, conn.execute(select_points))) == sorted(points)
            columns = {c["name"] for c in inspect(conn).get_columns("metric_point")}
            assert "id" not in columns
            key = inspect(conn).get_pk_constraint("metric_point")["constrained_columns"]
            assert key == ["run_id", "key", "step"]
            if kind == "sqlite":
                ddl = conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE name = 'metric_point'")
                ).scalar_one()
                assert "WITHOUT ROWID" in ddl
        downgrade(url, "0005")
        with engine.connect() as conn:
            assert sorted(map(tuple, conn.execute(select_points))) == sorted(points)
            ids = conn.execute(text("SELECT id FROM metric_point")).scalars().all()
            assert len(set(ids)) == len(points)
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO metric_point (run_id, key, step, value, wall_time) "
                    "VALUES (1, 'loss/total', 0, 9.0, 1.0)"
                )
            )
        with engine.begin() as conn:  # and new rows get the next id
            conn.execute(
                text(
                    "INSERT INTO metric_point (run_id, key, step, value, wall_time) "
                    "VALUES (1, 'loss/total', 99, 9.0, 1.0)"
                )
            )
        upgrade(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM metric_point")).scalar() == 7
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_metric_point_foreign_key_goes_and_comes_back_with_the_points(
    kind: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    """0006 -> 0007 drops metric_point's foreign key (a trigger deletes a run's points
    instead) and keeps every point; back to 0006 the key refuses a point of a missing run."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    url = (
        f"sqlite:///{tmp_path / 'm.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("pg_database")
    )
    upgrade(url, "0006")
    engine = make_engine(url)
    insert_point = text(
        "INSERT INTO metric_point (run_id, key, step, value, wall_time) "
        "VALUES (:run, 'loss', :step, 1.5, 2.5)"
    )
    count = text("SELECT count(*) FROM metric_point")
    try:
        with engine.begin() as conn:
            conn.execute(text(INSERT_BARE_RUN))
            conn.execute(insert_point, [{"run": 1, "step": s} for s in range(4)])
        upgrade(url, "0007")
        with engine.connect() as conn:
            assert conn.execute(count).scalar() == 4
            assert inspect(conn).get_foreign_keys("metric_point") == []
        downgrade(url, "0006")
        with engine.connect() as conn:
            assert conn.execute(count).scalar() == 4
            assert len(inspect(conn).get_foreign_keys("metric_point")) == 1
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert_point, {"run": 99, "step": 0})
        upgrade(url)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM run"))
        with engine.connect() as conn:
            assert conn.execute(count).scalar() == 0
    finally:
        engine.dispose()
