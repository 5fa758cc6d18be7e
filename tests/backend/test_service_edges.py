"""Service edges: Prometheus metrics, request size limit, local mode's user."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.backend.conftest import Team, make_team


def test_prometheus_exposes_requests_and_runs_by_status(team: Team) -> None:
    team.post("alice", "/runs", json={"train": {"max_steps": 3}})
    team.get("alice", "/runs")
    text = team.client.get("/metrics").text
    assert 'unisd_runs{status="queued"} 1.0' in text
    assert 'unisd_http_requests_total{method="GET",route="/runs",status="200"}' in text
    assert "unisd_http_request_duration_seconds_bucket" in text


def test_request_bodies_over_the_limit_are_413_and_store_nothing(sqlite_url: str) -> None:
    for team in make_team(sqlite_url, max_request_bytes=2048):
        big = {"train": {"max_steps": 3}, "name": "x" * 4000}
        response = team.post("alice", "/runs", json=big)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"

        def chunks() -> object:
            yield b'{"name": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}'

        streamed = team.client.post(
            "/api/v1/runs",
            content=chunks(),  # type: ignore[arg-type]
            headers={**team.headers("alice"), "content-type": "application/json"},
        )
        assert streamed.status_code == 413
        assert team.get("alice", "/runs").json()["total"] == 0


def test_local_mode_acts_as_one_local_admin(client: TestClient) -> None:
    me = client.get("/api/v1/auth/me").json()
    assert me["role"] == "admin" and me["email"] == "local@localhost"
    run = client.post("/api/v1/runs", json={}).json()
    assert run["created_by"] == me["user_id"]
    assert client.get("/api/v1/auth/me").json()["user_id"] == me["user_id"]


def test_a_started_server_freezes_its_startup_heap_for_the_collector(team: Team) -> None:
    """Once the app has started, what it imported and built is out of the collector's sight
    and young collections are rarer (large responses set off far fewer, cheaper ones)."""
    import gc

    from backend.main import GC_YOUNG_THRESHOLD

    assert team.client.get("/api/v1/health").status_code == 200
    assert gc.get_freeze_count() > 10_000
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
