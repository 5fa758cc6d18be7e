"""The runs API against a real (migrated) SQLite database, in process."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from backend.db.models import MetricPoint, Run
from backend.db.repositories import insert_metric_points
from backend.db.session import session_scope
from backend.main import create_app
from backend.settings import Settings
from tests.backend.conftest import DEAD_BROKER


def run_count(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(Run)) or 0


def test_health(client: TestClient) -> None:
    assert client.get("/api/v1/health").json() == {"status": "ok"}


def test_create_get_list_cancel(client: TestClient, sqlite_url: str) -> None:
    created = client.post("/api/v1/runs", json={"preset": "sft", "train": {"max_steps": 3}})
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "queued" and isinstance(body["id"], int)
    assert body["config"]["train"]["max_steps"] == 3
    assert client.get(f"/api/v1/runs/{body['id']}").json()["preset"] == "sft"
    listed = client.get("/api/v1/runs").json()
    assert [item["id"] for item in listed["items"]] == [body["id"]] and listed["total"] == 1
    cancelled = client.post(f"/api/v1/runs/{body['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert client.post(f"/api/v1/runs/{body['id']}/cancel").status_code == 409


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ('{"train": {"max_steps": 3', "body"),  # malformed JSON
        ('{"train": {"max_steps": -1}}', "train.max_steps"),
        ('{"train": {"surprise": 1}}', "train.surprise"),
        ('{"preset": "no-such-preset"}', "preset"),
        ('{"model": {"name_or_path": ""}}', "model.name_or_path"),
        ("[1, 2]", "body"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    client: TestClient, sqlite_url: str, body: str, path: str
) -> None:
    response = client.post(
        "/api/v1/runs", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(f["path"].startswith(path) for f in error["fields"]), error
    assert run_count(sqlite_url) == 0


@pytest.mark.parametrize(
    ("resources", "queue"),
    [({"device": "cpu"}, "cpu"), ({"device": "cuda"}, "gpu"), ({"gpus": 2}, "gpu-x2"), ({}, "cpu")],
)
def test_the_queue_follows_the_configs_resources(
    client: TestClient, resources: dict, queue: str
) -> None:
    created = client.post("/api/v1/runs", json={"resources": resources})
    assert created.status_code == 201, created.text
    assert created.json()["queue"] == queue  # {} leaves it to the deployment's default (cpu)
    clone = client.post(f"/api/v1/runs/{created.json()['id']}/clone", json={"overrides": {}})
    assert clone.json()["queue"] == queue


def test_unknown_run_is_404(client: TestClient) -> None:
    for response in (
        client.get("/api/v1/runs/999"),
        client.post("/api/v1/runs/999/cancel"),
        client.get("/api/v1/runs/999/metrics"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_metrics_are_read_back_per_key_ordered_by_step(client: TestClient, sqlite_url: str) -> None:
    run_id = client.post("/api/v1/runs", json={}).json()["id"]
    rows = [
        {"run_id": run_id, "key": key, "step": step, "value": value, "wall_time": 0.0}
        for key, step, value in [
            ("loss/total", 2, 1.5),
            ("loss/total", 1, 2.0),
            ("train/lr", 1, 0.1),
        ]
    ]
    with session_scope(sqlite_url) as session:
        insert_metric_points(session, rows)
        insert_metric_points(session, rows)  # a replay is harmless
        assert session.scalar(select(func.count()).select_from(MetricPoint)) == 3
    body = client.get(f"/api/v1/runs/{run_id}/metrics", params={"keys": "loss/total"}).json()
    assert body["metrics"] == {
        "loss/total": [
            {"step": 1, "value": 2.0, "wall_time": 0.0},
            {"step": 2, "value": 1.5, "wall_time": 0.0},
        ]
    }
    every_key = client.get(f"/api/v1/runs/{run_id}/metrics").json()["metrics"]
    assert sorted(every_key) == ["loss/total", "train/lr"]


def test_auth_on_requires_the_bearer_token(sqlite_url: str) -> None:
    settings = Settings(
        database_url=sqlite_url, broker_url=DEAD_BROKER, auth="on", api_token="s3cret"
    )
    with TestClient(create_app(settings, with_ui=False)) as client:
        assert client.get("/api/v1/health").status_code == 200
        assert client.get("/api/v1/runs").status_code == 401
        wrong = client.get("/api/v1/runs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.get("/api/v1/runs", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_auth_off_is_refused_off_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Settings(auth="off", host="0.0.0.0")
