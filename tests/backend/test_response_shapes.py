"""The read routes that write their JSON directly (runs list, metric series) answer exactly what
their documented response models would: each body is a fixed point of the model's validation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from backend.db.base import utcnow
from backend.db.models import Run
from backend.db.session import session_scope
from backend.metrics.schemas import SeriesOut
from backend.runs.schemas import RunList, RunMetrics, RunOut
from tests.backend.conftest import Team


def same_as_model(model: type[RunList] | type[RunMetrics] | type[SeriesOut], body: bytes) -> None:
    assert model.model_validate_json(body).model_dump_json().encode() == body


def test_run_list_metric_history_and_series_bodies_match_their_models(any_team: Team) -> None:
    first = any_team.post("alice", "/runs", json={"name": "a", "train": {"max_steps": 9}})
    second = any_team.post(
        "admin",
        "/runs/from-preset",
        json={"preset": "sft", "name": "b", "tags": ["x", "y:z"], "notes": "n"},
    )
    ids = [first.json()["id"], second.json()["id"]]
    with session_scope(any_team.url) as session:  # every kind of column holds a value
        now = utcnow()
        session.execute(
            update(Run)
            .where(Run.id == ids[0])
            .values(
                status="running",
                started_at=now,
                heartbeat_at=now,
                eta_at=now + timedelta(minutes=3),
                tokens_per_s=12.5,
                progress=0.25,
                step=2,
                worker="w1",
                design_point={"ema": True},
            )
        )
    points = [{"key": "loss/total", "step": s, "value": 1.0 / (s + 1)} for s in range(30)]
    points += [{"key": "acc", "step": s, "value": s, "wall_time": 1.5e9 + s} for s in range(3)]
    for run_id in ids:
        ingested = any_team.post("admin", f"/runs/{run_id}/metrics", json={"points": points})
        assert ingested.status_code == 200

    for params in (
        {"latest": "loss/total,acc,missing", "include_config": "false"},
        {"include_config": "true", "sort": "name"},
        {"tag": "x", "limit": 1},
    ):
        listed = any_team.get("admin", "/runs", params=params)
        assert listed.status_code == 200, listed.text
        same_as_model(RunList, listed.content)
    full = any_team.get("admin", "/runs", params={"latest": "acc"}).json()
    by_id = {item["id"]: item for item in full["items"]}
    assert by_id[ids[1]]["tags"] == ["x", "y:z"] and by_id[ids[1]]["notes"] == "n"
    assert by_id[ids[0]]["latest"] == {"acc": 2.0} and by_id[ids[0]]["design_point"]
    # the list shows each run as the single-run route does (bar the queue position)
    for run_id, item in by_id.items():
        one = any_team.get("admin", f"/runs/{run_id}").json()
        assert item == {**one, "queue_position": None, "latest": {"acc": 2.0}}
    assert list(by_id[ids[0]]) == list(RunOut.model_fields)

    for query in ({"keys": "loss/total,acc"}, {"max_points": 7}, {}):
        history = any_team.get("admin", f"/runs/{ids[0]}/metrics", params=query)
        same_as_model(RunMetrics, history.content)
    run_ids = f"{ids[0]},{ids[1]}"
    series = any_team.get(
        "admin",
        "/metrics/series",
        params={"run_ids": run_ids, "keys": "loss/total,acc", "max_points": 6},
    )
    same_as_model(SeriesOut, series.content)
    assert len(series.json()["runs"][str(ids[1])]["loss/total"]) <= 6
    # every grouping the read uses: by run and key, by run, by key, neither
    expected = [{"step": s, "value": float(s), "wall_time": 1.5e9 + s} for s in range(3)]
    for run_param, key_param in ((run_ids, "acc,nothing"), (run_ids, "acc"), (str(ids[0]), "acc")):
        one = any_team.get(
            "admin", "/metrics/series", params={"run_ids": run_param, "keys": key_param}
        )
        same_as_model(SeriesOut, one.content)
        assert all(by_key["acc"] == expected for by_key in one.json()["runs"].values())
    two_keys = any_team.get("admin", f"/runs/{ids[1]}/metrics", params={"keys": "acc,loss/total"})
    assert two_keys.json()["metrics"]["acc"] == expected
    assert [p["step"] for p in two_keys.json()["metrics"]["loss/total"]] == list(range(30))
