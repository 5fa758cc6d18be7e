"""Backend fixtures: migrated databases (SQLite and PostgreSQL), apps, users with tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from backend.auth import service as auth
from backend.db.session import session_scope
from backend.main import create_app
from backend.settings import Settings

# A broker nobody listens on: creating a run must still store it (the run stays queued in SQL).
DEAD_BROKER = "redis://127.0.0.1:1/0"
# Kombu's in-process transport: sends succeed at once and nothing consumes them.
MEMORY_BROKER = "memory://"


@pytest.fixture
def pg_database_migrated(pg_database: str) -> str:
    from backend.db.migrate import upgrade

    upgrade(pg_database)
    return pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_database_migrated"
    return str(request.getfixturevalue(name))


@dataclass
class Team:
    """An app with auth on and one user per role, each with a personal token."""

    client: TestClient
    url: str
    tokens: dict[str, str]
    ids: dict[str, int]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who: str, path: str, **kw: object) -> object:
        return self.client.get(f"/api/v1{path}", headers=self.headers(who), **kw)  # type: ignore[arg-type]

    def post(self, who: str, path: str, **kw: object) -> object:
        return self.client.post(f"/api/v1{path}", headers=self.headers(who), **kw)  # type: ignore[arg-type]


def make_team(url: str, tmp_path: object = None, **settings: object) -> Iterator[Team]:
    values: dict[str, object] = {
        "database_url": url,
        "broker_url": MEMORY_BROKER,
        "auth": "on",
        "session_secret": "test-secret",
        **settings,
    }
    app_settings = Settings.model_validate(values)
    tokens: dict[str, str] = {}
    ids: dict[str, int] = {}
    with session_scope(url) as session:
        for who, role in (
            ("admin", "admin"),
            ("alice", "member"),
            ("bob", "member"),
            ("vera", "viewer"),
        ):
            user = auth.create_user(session, f"{who}@example.org", role, password="password-1")
            ids[who] = user.id
            tokens[who] = auth.create_token(session, user, name="test")[1]
    with TestClient(create_app(app_settings, with_ui=False)) as client:
        yield Team(client, url, tokens, ids)


@pytest.fixture
def team(sqlite_url: str) -> Iterator[Team]:
    yield from make_team(sqlite_url)


@pytest.fixture
def any_team(db_url: str) -> Iterator[Team]:
    yield from make_team(db_url)


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    """Local mode: auth off, every request is the local admin."""
    settings = Settings(database_url=sqlite_url, broker_url=DEAD_BROKER, auth="off")
    with TestClient(create_app(settings, with_ui=False)) as test_client:
        yield test_client
