"""Metric reads carry each point's wall time (the Compare tab's time axis), downsampled or not,
through both read routes; on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from backend.metrics.downsample import downsample
from tests.backend.conftest import Team

START = 1_700_000_000.0
#: Seconds between two logged steps in the explicit-time series.
STEP_S = 1.5


def create(team: Team) -> int:
    response = team.post("alice", "/runs", json={"train": {"max_steps": 3}})
    assert response.status_code == 201, response.json()
    return int(response.json()["id"])


def series(team: Team, run_id: int, key: str, **params: Any) -> list[dict[str, Any]]:
    response = team.get("vera", f"/runs/{run_id}/metrics", params={"keys": key, **params})
    assert response.status_code == 200, response.json()
    return list(response.json()["metrics"][key])


def test_points_ingested_without_a_time_get_the_servers_clock_increasing_with_step(
    any_team: Team,
) -> None:
    """A script that logs one step per request and sends no wall time (the common case)."""
    team = any_team
    run_id = create(team)
    before = time.time()
    for step in range(5):
        point = {"key": "loss/total", "step": step, "value": 1.0 / (step + 1)}
        response = team.post("alice", f"/runs/{run_id}/metrics", json={"points": [point]})
        assert response.status_code == 200, response.json()
        time.sleep(0.01)  # distinct clock readings per request, whatever the clock's resolution
    after = time.time()

    points = series(team, run_id, "loss/total")
    assert [p["step"] for p in points] == [0, 1, 2, 3, 4]
    assert [p["value"] for p in points] == [1.0, 0.5, 1.0 / 3, 0.25, 0.2]
    times = [p["wall_time"] for p in points]
    assert all(isinstance(t, float) for t in times)
    assert before <= times[0] and times[-1] <= after
    assert times == sorted(times) and len(set(times)) == len(times)


def test_wall_time_survives_downsampling_on_both_read_routes(any_team: Team) -> None:
    team = any_team
    run_id = create(team)
    points = [
        {"key": "loss/total", "step": s, "value": 1.0, "wall_time": START + STEP_S * s}
        for s in range(1000)
    ]
    points[500]["value"] = 99.0  # a spike
    points[700]["value"] = -5.0  # a dip
    response = team.post("alice", f"/runs/{run_id}/metrics", json={"points": points})
    assert response.json() == {"received": 1000, "inserted": 1000}

    full = series(team, run_id, "loss/total")
    assert [p["wall_time"] for p in full] == [START + STEP_S * s for s in range(1000)]

    reduced = series(team, run_id, "loss/total", max_points=50)
    many = team.get(
        "vera",
        "/metrics/series",
        params={"run_ids": str(run_id), "keys": "loss/total", "max_points": 50},
    ).json()["runs"][str(run_id)]["loss/total"]
    for kept in (reduced, many):
        assert len(kept) <= 50
        # Each kept point keeps its own step's time: extremes, ends and everything between.
        assert all(p["wall_time"] == START + STEP_S * p["step"] for p in kept)
        by_value = {p["value"]: p for p in kept}
        assert by_value[99.0]["wall_time"] == START + STEP_S * 500
        assert by_value[-5.0]["wall_time"] == START + STEP_S * 700
        assert kept[0]["wall_time"] == START and kept[-1]["wall_time"] == START + STEP_S * 999


def test_downsample_carries_whatever_follows_step_and_value() -> None:
    points = [(s, float(s % 5), START + s) for s in range(200)]
    points[77] = (77, 50.0, START + 77)
    out = downsample(points, 10)
    assert len(out) <= 10 and (77, 50.0, START + 77) in out
    assert all(wall == START + step for step, _, wall in out)
