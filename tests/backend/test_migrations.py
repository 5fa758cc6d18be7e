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
    assert {"run", "metric_point"} <= tables(url)
    assert_models_match(url)
    downgrade(url, "base")
    assert tables(url) == set()
    upgrade(url)
    assert {"run", "metric_point"} <= tables(url)


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1


def test_round_trip_sqlite(tmp_path) -> None:
    round_trip(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_round_trip_postgresql(pg_database: str) -> None:
    round_trip(pg_database)
