"""Backend fixtures: a migrated PostgreSQL database."""

from __future__ import annotations

import pytest


@pytest.fixture
def pg_database_migrated(pg_database: str) -> str:
    from backend.db.migrate import upgrade

    upgrade(pg_database)
    return pg_database
