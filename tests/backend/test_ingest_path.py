"""The hot paths' plumbing: metrics ingest and the run list authenticate in their handler, the
request's session commits before the response leaves, in-batch duplicates, the non-durable
commit of metric batches on PostgreSQL; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from starlette.types import Message, Receive, Scope, Send

from backend.auth import service as auth
from backend.db.models import MetricLatest, MetricPoint, Run
from backend.db.repositories import insert_point_rows
from backend.db.session import session_factory, session_scope
from backend.main import create_app
from backend.settings import Settings
from tests.backend.conftest import MEMORY_BROKER, Team, make_team

RUN = {"train": {"max_steps": 3}}


def create(team: Team, who: str = "alice") -> int:
    response = team.post(who, "/runs", json=RUN)
    assert response.status_code == 201, response.json()
    return int(response.json()["id"])


def points(*steps: int, key: str = "loss/total") -> dict[str, list[dict[str, object]]]:
    return {"points": [{"key": key, "step": s, "value": float(s)} for s in steps]}


def test_ingest_and_list_authenticate_before_anything_else(any_team: Team) -> None:
    team = any_team
    run_id = create(team)
    url = f"/api/v1/runs/{run_id}/metrics"
    malformed = {"content-type": "application/json"}
    # No token, and a body that would be a 422: the 401 comes first (no parsing for strangers).
    assert team.client.post(url, content="{", headers=malformed).status_code == 401
    assert team.client.get("/api/v1/runs").status_code == 401
    bad = {"Authorization": "Bearer unisd_not-a-token"}
    assert team.client.post(url, json=points(1), headers=bad).status_code == 401
    assert team.client.get("/api/v1/runs", headers=bad).status_code == 401
    assert team.post("vera", f"/runs/{run_id}/metrics", json=points(1)).status_code == 403
    assert team.post("bob", f"/runs/{run_id}/metrics", json=points(1)).status_code == 403
    assert team.post("alice", "/runs/999999/metrics", json=points(1)).status_code == 404
    assert team.post("admin", f"/runs/{run_id}/metrics", json=points(1)).json() == {
        "received": 1,
        "inserted": 1,
    }
    # Revoking a token takes effect on the very next request.
    with session_scope(team.url) as session:
        user = auth.get_user(session, team.ids["alice"])
        row, token = auth.create_token(session, user, name="short-lived")
        token_id = row.id
    headers = {"Authorization": f"Bearer {token}"}
    assert team.client.post(url, json=points(2), headers=headers).status_code == 200
    assert team.client.get("/api/v1/runs", headers=headers).status_code == 200
    with session_scope(team.url) as session:
        auth.revoke_token(session, auth.principal_of(user), token_id)
    assert team.client.post(url, json=points(3), headers=headers).status_code == 401
    assert team.client.get("/api/v1/runs", headers=headers).status_code == 401


def test_ingest_keeps_the_first_point_of_a_step_repeated_within_a_batch(any_team: Team) -> None:
    team = any_team
    run_id = create(team)
    batch = {
        "points": [
            {"key": "a", "step": 1, "value": 1.0},
            {"key": "a", "step": 2, "value": 2.0},
            {"key": "a", "step": 1, "value": 9.0},  # a repeat: ignored, as across batches
            {"key": "b", "step": 1, "value": 5.0},
        ]
    }
    assert team.post("alice", f"/runs/{run_id}/metrics", json=batch).json() == {
        "received": 4,
        "inserted": 3,
    }
    series = team.get("alice", f"/runs/{run_id}/metrics", params={"keys": "a"}).json()
    assert [(p["step"], p["value"]) for p in series["metrics"]["a"]] == [(1, 1.0), (2, 2.0)]
    latest = team.get("alice", f"/runs/{run_id}/metrics/latest").json()
    assert latest["a"] == {"step": 2, "value": 2.0, "min": 1.0, "max": 2.0, "count": 2}
    assert latest["b"] == {"step": 1, "value": 5.0, "min": 5.0, "max": 5.0, "count": 1}
    # A replay with one new point: only that one is stored, the summary stays exact.
    again = team.post("alice", f"/runs/{run_id}/metrics", json=points(2, 3, key="a"))
    assert again.json() == {"received": 2, "inserted": 1}
    latest = team.get("alice", f"/runs/{run_id}/metrics/latest").json()
    assert latest["a"] == {"step": 3, "value": 3.0, "min": 1.0, "max": 3.0, "count": 3}


class CommitProbe:
    """An ASGI wrapper that, when the response starts, counts from another session what a
    query sees: whatever the request wrote must be committed by then."""

    def __init__(self, app: object, url: str) -> None:
        self.app = app
        self.url = url
        self.seen: list[tuple[int, str | None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def probe(message: Message) -> None:
            if message["type"] == "http.response.start":
                session = session_factory(self.url)()
                try:
                    count = session.scalar(select(func.count()).select_from(MetricPoint))
                    name = session.scalar(select(Run.name).order_by(Run.id.desc()).limit(1))
                    self.seen.append((int(count or 0), name))
                finally:
                    session.close()
            await send(message)

        await self.app(scope, receive, probe)  # type: ignore[operator]


@pytest.fixture
def probed(db_url: str) -> Iterator[tuple[TestClient, CommitProbe, dict[str, str]]]:
    settings = Settings.model_validate(
        {"database_url": db_url, "broker_url": MEMORY_BROKER, "auth": "on"}
    )
    with session_scope(db_url) as session:
        user = auth.create_user(session, "probe@example.org", "admin")
        token = auth.create_token(session, user)[1]
    probe = CommitProbe(create_app(settings, with_ui=False), db_url)
    with TestClient(probe) as client:  # type: ignore[arg-type]
        yield client, probe, {"Authorization": f"Bearer {token}"}


def test_a_request_commits_before_its_response_is_sent(
    probed: tuple[TestClient, CommitProbe, dict[str, str]],
) -> None:
    client, probe, headers = probed
    run_id = client.post("/api/v1/runs", json=RUN, headers=headers).json()["id"]
    ingested = client.post(f"/api/v1/runs/{run_id}/metrics", json=points(0, 1), headers=headers)
    assert ingested.status_code == 200
    assert probe.seen[-1][0] == 2  # the ingest commits in its handler
    # A route that leaves the commit to the session dependency: committed before the answer.
    renamed = client.patch(f"/api/v1/runs/{run_id}", json={"name": "renamed"}, headers=headers)
    assert renamed.status_code == 200
    assert probe.seen[-1][1] == "renamed"


def test_the_durable_commit_setting_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().ingest_durable_commit is False
    monkeypatch.setenv("UNISD_INGEST_DURABLE_COMMIT", "true")
    assert Settings().ingest_durable_commit is True


@pytest.mark.postgres
def test_a_non_durable_batch_relaxes_only_its_own_transaction(pg_database_migrated: str) -> None:
    url = pg_database_migrated
    with session_scope(url) as session:
        run = Run(
            name="r",
            status="queued",
            config={},
            config_hash="x",
            base_model="m",
            dataset="d",
            seed=0,
        )
        session.add(run)
        session.flush()
        run_id = run.id
    show = text("SHOW synchronous_commit")
    session = session_factory(url)()
    try:
        rows = [(run_id, "a", step, 1.0, 0.0) for step in range(3)]
        assert insert_point_rows(session, rows[:2], durable=False) == 2
        assert session.scalar(show) == "off"  # this transaction's commit does not wait
        session.commit()
        assert session.scalar(show) == "on"  # the next transaction waits again
        assert insert_point_rows(session, rows, durable=True) == 1
        assert session.scalar(show) == "on"
        session.commit()
    finally:
        session.close()
    with session_scope(url) as session:
        latest = session.get(MetricLatest, (run_id, "a"))
        assert latest is not None and (latest.step, latest.count) == (2, 3)


@pytest.mark.postgres
def test_ingest_with_durable_commits_on(pg_database_migrated: str) -> None:
    for team in make_team(pg_database_migrated, ingest_durable_commit=True):
        run_id = create(team)
        response = team.post("alice", f"/runs/{run_id}/metrics", json=points(0, 1, 2))
        assert response.json() == {"received": 3, "inserted": 3}
