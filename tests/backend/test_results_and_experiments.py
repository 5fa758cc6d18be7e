"""Evaluations, artifacts (path-safe downloads) and experiments with members."""

from __future__ import annotations

from pathlib import Path

from backend.db.repositories import add_artifact, add_evaluation
from backend.db.session import session_scope
from tests.backend.conftest import Team, make_team

RUN = {"train": {"max_steps": 3}}


def test_evaluations_of_one_run_and_many(any_team: Team) -> None:
    team = any_team
    a = team.post("alice", "/runs", json=RUN).json()["id"]
    b = team.post("alice", "/runs", json=RUN).json()["id"]
    with session_scope(team.url) as session:
        add_evaluation(session, a, "scienceqa", "accuracy", 0.5, n=100)
        add_evaluation(session, b, "gsm8k", "accuracy", 0.25, n=50)
    one = team.get("vera", f"/runs/{a}/evaluations").json()
    assert [(e["benchmark"], e["value"], e["n"]) for e in one] == [("scienceqa", 0.5, 100)]
    many = team.get("vera", "/evaluations", params={"run_ids": f"{a},{b}"}).json()
    assert {e["run_id"] for e in many} == {a, b}
    only = team.get("vera", "/evaluations", params={"run_ids": f"{a},{b}", "benchmark": "gsm8k"})
    assert [e["run_id"] for e in only.json()] == [b]
    assert team.get("vera", "/runs/999999/evaluations").status_code == 404


def test_artifact_download_refuses_traversal(sqlite_url: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "runs" / "1").mkdir(parents=True)
    inside = root / "runs" / "1" / "report.json"
    inside.write_text('{"ok": true}')
    outside = tmp_path / "secret.txt"
    outside.write_text("TOP-SECRET-CONTENT")
    (root / "runs" / "1" / "link").symlink_to(outside)
    for team in make_team(sqlite_url, data_dir=str(root)):
        run_id = team.post("alice", "/runs", json=RUN).json()["id"]
        with session_scope(sqlite_url) as session:
            add_artifact(session, run_id, "eval_report", "report.json", inside.as_uri(), 12)
            add_artifact(session, run_id, "log", "escape", outside.as_uri(), 6)
            add_artifact(
                session, run_id, "log", "dots", f"file://{root}/runs/1/../../../secret.txt", 6
            )
            add_artifact(session, run_id, "log", "link", (root / "runs/1/link").as_uri(), 6)
            add_artifact(session, run_id, "checkpoint", "ckpt", (root / "runs").as_uri(), 0)
            add_artifact(session, run_id, "other", "remote", "s3://bucket/x", 1)
        listed = team.get("vera", f"/runs/{run_id}/artifacts").json()
        assert {a["name"] for a in listed} == {
            "report.json",
            "escape",
            "dots",
            "link",
            "ckpt",
            "remote",
        }
        assert "uri" not in listed[0]
        ok = team.get("vera", f"/runs/{run_id}/artifacts/report.json")
        assert ok.status_code == 200 and ok.json() == {"ok": True}
        for name in ("escape", "dots", "link", "remote"):
            response = team.get("vera", f"/runs/{run_id}/artifacts/{name}")
            assert response.status_code == 403, name
            assert "TOP-SECRET" not in response.text
        assert team.get("vera", f"/runs/{run_id}/artifacts/ckpt").status_code == 409
        for probe in ("../../secret.txt", "..%2F..%2Fsecret.txt", "%2e%2e/secret.txt", "nope"):
            response = team.get("vera", f"/runs/{run_id}/artifacts/{probe}")
            assert response.status_code in (404, 403, 422), probe
            assert "TOP-SECRET" not in response.text


def test_experiments_members_archive_and_runs(any_team: Team) -> None:
    team = any_team
    assert team.post("vera", "/experiments", json={"name": "x"}).status_code == 403
    created = team.post("alice", "/experiments", json={"name": "ablation-1", "description": "d"})
    assert created.status_code == 201
    exp_id = created.json()["id"]
    assert team.post("bob", "/experiments", json={"name": "ablation-1"}).status_code == 409
    run = team.post("bob", "/runs", json=RUN, params={"experiment_id": exp_id})
    assert run.status_code == 201 and run.json()["experiment_id"] == exp_id
    assert team.post("bob", "/runs", json=RUN, params={"experiment_id": 99999}).status_code == 404
    assert team.get("vera", f"/experiments/{exp_id}").json()["run_count"] == 1
    assert team.get("vera", "/runs", params={"experiment_id": exp_id}).json()["total"] == 1

    assert team.post("bob", f"/experiments/{exp_id}/archive").status_code == 403
    put = team.client.put(
        f"/api/v1/experiments/{exp_id}/members/{team.ids['bob']}",
        headers=team.headers("alice"),
        json={"role": "owner"},
    )
    assert put.status_code == 200
    members = team.get("vera", f"/experiments/{exp_id}/members").json()
    assert {(m["user_id"], m["role"]) for m in members} == {
        (team.ids["alice"], "owner"),
        (team.ids["bob"], "owner"),
    }
    mine = team.get("vera", "/experiments", params={"member": team.ids["bob"]}).json()
    assert [e["id"] for e in mine["items"]] == [exp_id]
    assert team.post("bob", f"/experiments/{exp_id}/archive").json()["archived_at"] is not None
    assert team.get("vera", "/experiments").json()["items"] == []
    assert (
        len(team.get("vera", "/experiments", params={"include_archived": True}).json()["items"])
        == 1
    )
    assert team.post("bob", "/runs", json=RUN, params={"experiment_id": exp_id}).status_code == 409
