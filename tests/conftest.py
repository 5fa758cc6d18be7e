"""Fixtures shared by every layer: a migrated database, service URLs, a live stack."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import PG_URL, REDIS_URL, Stack, unavailable


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    from backend.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'unisd.db'}"
    upgrade(url)
    return url


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # driver-specific connection errors
        unavailable(f"PostgreSQL is not reachable at {PG_URL}: {exc.__class__.__name__}")
    name = f"unisd_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        from backend.db.session import engine_for

        engine_for.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_broker_url() -> str:
    """A Redis database index of our own on the shared server, emptied before use."""
    import redis

    index = 8 + (os.getpid() % 8)
    client = redis.Redis.from_url(f"{REDIS_URL}/{index}")
    try:
        client.ping()
    except redis.ConnectionError:
        unavailable(f"Redis is not reachable at {REDIS_URL}")
    client.flushdb()
    return f"{REDIS_URL}/{index}"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path)
    try:
        yield running
    finally:
        running.stop()
