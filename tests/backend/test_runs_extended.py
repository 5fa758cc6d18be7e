"""Runs API beyond the basics: filters, pagination, retry, clone, soft delete, tags, events,
metrics ingest, downsampling, multi-run reads; on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update

from backend.db.models import Run
from backend.db.repositories import append_run_event
from backend.db.session import session_scope
from backend.metrics.downsample import downsample
from tests.backend.conftest import Team

RUN = {"train": {"max_steps": 3}}


def create(team: Team, who: str = "alice", **params: object) -> int:
    body = params.pop("json", RUN)
    response = team.post(who, "/runs", json=body, params=params)
    assert response.status_code == 201, response.json()
    return int(response.json()["id"])


def set_status(url: str, run_id: int, status: str) -> None:
    with session_scope(url) as session:
        session.execute(update(Run).where(Run.id == run_id).values(status=status))


def test_filters_pagination_and_search(any_team: Team) -> None:
    team = any_team
    a = create(team, json={"preset": "agree", "name": "alpha run"}, tag=["paper", "v1"])
    b = create(team, json={"preset": "ema", "data": {"benchmark": "gsm8k"}}, tag=["v1"])
    c = create(team, "bob", json={"preset": "sft", "name": "50%_done"})
    set_status(team.url, b, "running")

    def ids(**params: object) -> list[int]:
        response = team.get("vera", "/runs", params=params)
        assert response.status_code == 200, response.json()
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [c, b, a]
    assert ids(agreement="true") == [a]
    assert ids(ema="true", agreement="false") == [b]
    assert ids(status=["running", "queued"]) == [c, b, a] and ids(status="running") == [b]
    assert ids(tag="v1") == [b, a] and ids(tag=["v1", "paper"]) == [a]
    assert ids(benchmark="gsm8k") == [b] and ids(preset="sft") == [c]
    assert ids(created_by=team.ids["bob"]) == [c]
    assert ids(q="ALPHA") == [a] and ids(q="%") == [c] and ids(q="_d") == [c]
    assert ids(sort="id", limit=2) == [a, b] and ids(sort="id", limit=2, offset=2) == [c]
    body = team.get("vera", "/runs", params={"limit": 1}).json()
    assert body["total"] == 3 and len(body["items"]) == 1
    for evil in ("' OR 1=1 --", "x'); DROP TABLE run; --", '" OR ""="'):
        assert ids(q=evil) == [] and ids(tag=evil) == [] and ids(base_model=evil) == []
    assert ids() == [c, b, a]  # still there
    bad = team.get("vera", "/runs", params={"status": "exploded", "sort": "nope", "limit": 0})
    assert bad.status_code == 422
    paths = " ".join(f["path"] for f in bad.json()["error"]["fields"])
    assert all(name in paths for name in ("status", "sort", "limit")), paths


def test_retry_clone_delete_tags_notes_and_events(any_team: Team) -> None:
    team = any_team
    run_id = create(team, tag=["a"])
    assert team.post("alice", f"/runs/{run_id}/retry").status_code == 409  # still queued
    set_status(team.url, run_id, "failed")
    retried = team.post("alice", f"/runs/{run_id}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    assert retried.json()["queue_position"] == 0

    clone = team.post(
        "bob", f"/runs/{run_id}/clone", json={"overrides": ["train.lr=1e-4", "ema.enabled=true"]}
    )
    assert clone.status_code == 201, clone.json()
    body = clone.json()
    assert body["parent_run_id"] == run_id and body["ema"] is True
    assert body["config"]["train"]["lr"] == 1e-4 and body["tags"] == ["a"]
    assert body["created_by"] == team.ids["bob"]
    bad = team.post("bob", f"/runs/{run_id}/clone", json={"overrides": {"train": {"lr": -1}}})
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["path"] == "overrides.train.lr"

    patched = team.client.patch(
        f"/api/v1/runs/{run_id}",
        headers=team.headers("alice"),
        json={"notes": "looks good", "tags": ["best", "paper"]},
    )
    assert patched.json()["notes"] == "looks good" and patched.json()["tags"] == ["best", "paper"]
    bad_tag = team.client.patch(
        f"/api/v1/runs/{run_id}", headers=team.headers("alice"), json={"tags": ["no spaces"]}
    )
    assert bad_tag.status_code == 422

    events = team.get("alice", f"/runs/{run_id}/events").json()
    assert [e["message"].split(" by")[0] for e in events["items"]] == ["retry requested"]
    with session_scope(team.url) as session:
        append_run_event(session, run_id, "info", "step 1")
    newer = team.get(
        "alice", f"/runs/{run_id}/events", params={"after_id": events["next_after_id"]}
    )
    assert [e["message"] for e in newer.json()["items"]] == ["step 1"]

    assert (
        team.client.delete(f"/api/v1/runs/{run_id}", headers=team.headers("bob")).status_code == 403
    )
    deleted = team.client.delete(f"/api/v1/runs/{run_id}", headers=team.headers("alice"))
    assert deleted.status_code == 200 and deleted.json()["status"] == "cancelled"
    assert team.get("alice", f"/runs/{run_id}").status_code == 404
    assert team.get("alice", f"/runs/{run_id}", params={"include_deleted": True}).status_code == 200
    listed = [r["id"] for r in team.get("alice", "/runs").json()["items"]]
    assert run_id not in listed


def test_metric_ingest_is_idempotent_and_reads_downsample_keeping_extremes(
    any_team: Team,
) -> None:
    team = any_team
    run_id = create(team)
    other = create(team)
    points = [{"key": "loss/total", "step": s, "value": 1.0} for s in range(1000)]
    points[500]["value"] = 99.0  # a spike
    points[700]["value"] = -5.0  # a dip
    points.append({"key": "train/lr", "step": 3, "value": 0.1})
    first = team.post("alice", f"/runs/{run_id}/metrics", json={"points": points})
    assert first.json() == {"received": 1001, "inserted": 1001}
    again = team.post("alice", f"/runs/{run_id}/metrics", json={"points": points[:10]})
    assert again.json() == {"received": 10, "inserted": 0}
    assert (
        team.post("bob", f"/runs/{run_id}/metrics", json={"points": points[:1]}).status_code == 403
    )

    series = team.get(
        "vera", f"/runs/{run_id}/metrics", params={"keys": "loss/total", "max_points": 50}
    ).json()["metrics"]["loss/total"]
    assert len(series) <= 50
    values = {p["value"] for p in series}
    assert {99.0, -5.0} <= values
    assert series[0]["step"] == 0 and series[-1]["step"] == 999

    latest = team.get("vera", f"/runs/{run_id}/metrics/latest").json()
    assert latest["loss/total"] == {
        "step": 999,
        "value": 1.0,
        "min": -5.0,
        "max": 99.0,
        "count": 1000,
    }

    team.post("alice", f"/runs/{other}/metrics", json={"points": points[:5]})
    many = team.get(
        "vera",
        "/metrics/series",
        params={"run_ids": f"{run_id},{other},424242", "keys": "loss/total", "max_points": 10},
    ).json()["runs"]
    assert sorted(many, key=int) == [str(run_id), str(other)]
    assert len(many[str(other)]["loss/total"]) == 5
    table = team.get(
        "vera", "/metrics/latest", params={"run_ids": f"{run_id},{other}", "keys": "train/lr"}
    ).json()["runs"]
    assert table[str(run_id)]["train/lr"]["value"] == 0.1 and table[str(other)] == {}
    listed = team.get("vera", "/runs", params={"latest": "loss/total,train/lr"}).json()
    by_id = {item["id"]: item["latest"] for item in listed["items"]}
    assert by_id[run_id] == {"loss/total": 1.0, "train/lr": 0.1}
    keys = team.get("vera", "/metrics/keys", params={"run_ids": str(run_id)}).json()
    assert keys == {"keys": ["loss/total", "train/lr"]}


def test_metric_ingest_rejects_bad_points_naming_the_field(team: Team) -> None:
    run_id = create(team)
    for point, field in (
        ({"key": "", "step": 1, "value": 1.0}, "key"),
        ({"key": "a", "step": -1, "value": 1.0}, "step"),
        ({"key": "a", "step": 1, "value": "NaN"}, "value"),
        ({"key": "a", "step": 1, "value": 1.0, "extra": 1}, "extra"),
    ):
        response = team.post("alice", f"/runs/{run_id}/metrics", json={"points": [point]})
        assert response.status_code == 422, point
        assert response.json()["error"]["fields"][0]["path"] == f"points.0.{field}"
    assert team.get("alice", f"/runs/{run_id}/metrics").json()["metrics"] == {}
    for bad_ids in ("1,x", "²", "1,-2", "0", str(2**31)):  # '²' passes str.isdigit()
        series = team.get("alice", "/metrics/series", params={"run_ids": bad_ids, "keys": "a"})
        assert series.status_code == 422, bad_ids


def test_metric_ingest_body_errors_are_422_and_the_body_is_documented(team: Team) -> None:
    """The batch is validated from its bytes (not by FastAPI): the same 422s, the same docs."""
    run_id = create(team)
    url = f"/api/v1/runs/{run_id}/metrics"
    headers = {**team.headers("alice"), "content-type": "application/json"}
    for content, path in (
        ('{"points": [{"key": "a", "step": 1, "value": 1.0}', "body"),  # malformed
        ("", "body"),
        ("[]", "body"),
        ('{"points": []}', "points"),
        ('{"points": [{"key": "a b", "step": 1, "value": 1}]}', "points.0.key"),
        ('{"points": [{"key": "a", "step": 1, "value": 1e400}]}', "points.0.value"),
    ):
        response = team.client.post(url, content=content, headers=headers)
        assert response.status_code == 422, content
        assert response.json()["error"]["fields"][0]["path"] == path, response.json()
    malformed = team.client.post(url, content='{"points": [}', headers=headers).json()
    assert "character 12" in malformed["error"]["fields"][0]["message"]
    form = {**headers, "content-type": "text/plain"}
    assert team.client.post(url, content='{"points": []}', headers=form).status_code == 422
    ok = team.client.post(
        url,
        content='{"points": [{"key": "a", "step": 1, "value": 2}]}',
        headers={**headers, "content-type": "application/json; charset=utf-8"},
    )
    assert ok.json() == {"received": 1, "inserted": 1}

    body = team.client.get("/openapi.json").json()["paths"]["/api/v1/runs/{run_id}/metrics"]
    schema = body["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["points"] and schema["additionalProperties"] is False
    point = schema["properties"]["points"]["items"]
    assert set(point["properties"]) == {"key", "step", "value", "wall_time"}
    assert "$ref" not in str(schema)


def test_downsample_keeps_ends_and_extremes() -> None:
    points = [(i, float(i % 7)) for i in range(100)]
    points[40] = (40, 100.0)
    out = downsample(points, 12)
    assert len(out) <= 12 and out[0] == points[0] and out[-1] == points[-1]
    assert (40, 100.0) in out and [s for s, _ in out] == sorted(s for s, _ in out)
    assert downsample(points, 1000) == points and downsample(points, 1) == [points[-1]]


def test_the_largest_seed_fits_on_every_database(any_team: Team) -> None:
    body = {"train": {"max_steps": 3, "seed": 2**32 - 1}}
    created = any_team.post("alice", "/runs", json=body)
    assert created.status_code == 201 and created.json()["seed"] == 2**32 - 1
