"""Sweeps: designs become queued runs in one transaction; progress, cancel, analysis."""

from __future__ import annotations

import random

from sqlalchemy import func, select, update

from backend.db.models import Run, Sweep
from backend.db.repositories import add_evaluation
from backend.db.session import session_scope
from tests.backend.conftest import Team

BASE = {"train": {"max_steps": 2}}


def counts(url: str) -> tuple[int, int]:
    with session_scope(url) as session:
        runs = session.scalar(select(func.count()).select_from(Run)) or 0
        sweeps = session.scalar(select(func.count()).select_from(Sweep)) or 0
    return runs, sweeps


def test_full_factorial_creates_all_runs_and_reports_progress(any_team: Team) -> None:
    team = any_team
    body = {
        "name": "ab",
        "base": BASE,
        "factors": [{"name": "agreement"}, {"name": "ema"}],
        "seeds": 2,
        "tags": ["abl"],
    }
    preview = team.post("alice", "/sweeps/preview", json=body).json()
    assert preview["run_count"] == 8 and preview["estimated_gpu_hours"] > 0
    assert {p["label"] for p in preview["points"]} == {"base", "agreement", "ema", "agreement+ema"}
    assert counts(team.url) == (0, 0)

    created = team.post("alice", "/sweeps", json=body)
    assert created.status_code == 201, created.json()
    sweep = created.json()
    assert sweep["run_count"] == 8 and len(sweep["run_ids"]) == 8
    assert sweep["status"] == "queued" and sweep["progress"]["queued"] == 8
    runs = team.get("vera", "/runs", params={"sweep_id": sweep["id"], "limit": 100}).json()["items"]
    flags = {(r["agreement"], r["ema"], r["seed"]) for r in runs}
    assert flags == {(a, e, s) for a in (False, True) for e in (False, True) for s in (0, 1)}
    assert all(r["tags"] == ["abl"] and r["config"]["train"]["max_steps"] == 2 for r in runs)

    with session_scope(team.url) as session:
        first = sweep["run_ids"][0]
        session.execute(update(Run).where(Run.id == first).values(status="running"))
    assert team.get("vera", f"/sweeps/{sweep['id']}").json()["status"] == "running"
    assert team.post("bob", f"/sweeps/{sweep['id']}/cancel").status_code == 403
    cancelled = team.post("alice", f"/sweeps/{sweep['id']}/cancel").json()
    assert cancelled["progress"]["cancelled"] == 7 and cancelled["progress"]["running"] == 1
    assert team.get("vera", "/sweeps").json()["total"] == 1


def test_fractional_and_one_at_a_time_with_numeric_levels(team: Team) -> None:
    five = [
        {"name": c} for c in ("agreement", "ema", "contrastive", "feature_matching", "clipping")
    ]
    frac = team.post(
        "alice", "/sweeps/preview", json={"base": BASE, "factors": five, "design": "fractional"}
    ).json()
    assert frac["run_count"] == 16 and frac["resolution"] == 4
    res5 = team.post(
        "alice",
        "/sweeps/preview",
        json={"base": BASE, "factors": five, "design": "fractional", "resolution": 5},
    ).json()
    assert res5["run_count"] == 16 and res5["aliases"] == {}
    oat = team.post(
        "alice",
        "/sweeps",
        json={
            "base": BASE,
            "base_preset": "agree",
            "design": "one_at_a_time",
            "factors": [
                {"name": "agreement.gamma_agreement", "levels": [0.01, 0.1, 1.0]},
                {"name": "train.lr", "levels": [2e-5, 1e-4]},
            ],
            "seeds": [7],
        },
    )
    assert oat.status_code == 201, oat.json()
    assert oat.json()["run_count"] == 4
    runs = team.get("vera", "/runs", params={"sweep_id": oat.json()["id"]}).json()["items"]
    assert {
        (r["config"]["agreement"]["gamma_agreement"], r["config"]["train"]["lr"]) for r in runs
    } == {(0.01, 2e-5), (0.1, 2e-5), (1.0, 2e-5), (0.01, 1e-4)}
    assert all(r["seed"] == 7 and r["preset"] == "agree" for r in runs)


def test_bad_designs_are_422_naming_the_field_and_write_nothing(team: Team) -> None:
    cases = [
        ({"factors": []}, "factors"),
        ({"factors": [{"name": "warp_drive"}]}, "factors.0.name"),
        ({"factors": [{"name": "train.lr"}]}, "factors.0"),
        ({"factors": [{"name": "ema"}, {"name": "ema"}]}, "factors"),
        ({"factors": [{"name": "ema"}], "seeds": 0}, "seeds"),
        ({"factors": [{"name": "train.lr", "levels": [-1, 1]}]}, "base.train.lr"),
        ({"factors": [{"name": "ema"}], "base_preset": "sft"}, "base.ema.enabled"),
        ({"factors": [{"name": "ema"}], "base": {"train": {"nope": 1}}}, "base.train.nope"),
        (
            {
                "factors": [{"name": "train.lr", "levels": [1e-5, 2e-5, 3e-5]}],
                "design": "fractional",
            },
            "factors",
        ),
    ]
    for body, path in cases:
        response = team.post("alice", "/sweeps", json=body)
        assert response.status_code == 422, (body, response.json())
        paths = [f["path"] for f in response.json()["error"]["fields"]]
        assert any(p.startswith(path) for p in paths), (body, paths)
    assert team.post("vera", "/sweeps", json={"factors": [{"name": "ema"}]}).status_code == 403
    assert counts(team.url) == (0, 0)


def test_sweep_analysis_estimates_effects_from_evaluations(any_team: Team) -> None:
    team = any_team
    body = {"base": BASE, "factors": [{"name": "agreement"}, {"name": "ema"}], "seeds": 3}
    sweep = team.post("alice", "/sweeps", json=body).json()
    empty = team.get("vera", f"/sweeps/{sweep['id']}/analysis").json()
    assert empty["n_runs"] == 0 and empty["note"]
    noise = random.Random(0)
    with session_scope(team.url) as session:
        runs = session.scalars(select(Run).where(Run.sweep_id == sweep["id"])).all()
        for run in runs:
            score = 0.5 + 0.1 * run.agreement + 0.02 * run.ema + noise.gauss(0, 0.005)
            add_evaluation(session, run.id, "scienceqa", "accuracy", score, n=100)
            run.status = "succeeded"
    result = team.get("vera", f"/sweeps/{sweep['id']}/analysis").json()
    assert result["response"] == "eval/scienceqa/accuracy" and result["n_runs"] == 12
    effects = {e["term"]: e for e in result["effects"]}
    assert abs(effects["agreement"]["estimate"] - 0.1) < 0.02
    assert effects["agreement"]["ci_low"] > 0.05
    assert effects["agreement:ema"]["ci_low"] < 0 < effects["agreement:ema"]["ci_high"]
    assert {c["label"] for c in result["configs"]} == {"base", "agreement", "ema", "agreement+ema"}
    assert team.get("vera", f"/sweeps/{sweep['id']}").json()["status"] == "succeeded"

    run_set = team.post(
        "vera",
        "/analysis/effects",
        json={"run_ids": sweep["run_ids"], "factors": ["agreement", "ema"]},
    ).json()
    assert abs({e["term"]: e for e in run_set["effects"]}["agreement"]["estimate"] - 0.1) < 0.02
    assert team.get("vera", "/sweeps/424242/analysis").status_code == 404
