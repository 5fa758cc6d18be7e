"""Accounts and security: tokens, roles, ownership, cookies, the bootstrap CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.auth import service as auth
from backend.db.base import utcnow
from backend.db.models import ApiToken
from backend.db.session import session_scope
from backend.main import create_app
from backend.settings import Settings
from tests.backend.conftest import DEAD_BROKER, Team

RUN = {"preset": "sft", "train": {"max_steps": 3}}


def test_no_token_is_401_but_health_and_prometheus_are_open(team: Team) -> None:
    client = team.client
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/metrics").status_code == 200
    for method, path in (("GET", "/runs"), ("POST", "/runs"), ("GET", "/auth/me")):
        response = client.request(method, f"/api/v1{path}", json=RUN)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
    bad = client.get("/api/v1/runs", headers={"Authorization": "Bearer unisd_nope"})
    assert bad.status_code == 401


def test_roles_viewer_reads_member_creates_and_cancels_only_own(any_team: Team) -> None:
    team = any_team
    assert team.post("vera", "/runs", json=RUN).status_code == 403
    created = team.post("alice", "/runs", json=RUN)
    assert created.status_code == 201
    run_id = created.json()["id"]
    assert created.json()["created_by"] == team.ids["alice"]
    assert team.get("vera", f"/runs/{run_id}").status_code == 200
    for who in ("vera", "bob"):
        refused = team.post(who, f"/runs/{run_id}/cancel")
        assert refused.status_code == 403, who
        assert refused.json()["error"]["code"] == "forbidden"
    assert team.post("alice", f"/runs/{run_id}/cancel").json()["status"] == "cancelled"
    other = team.post("bob", "/runs", json=RUN).json()["id"]
    assert team.post("admin", f"/runs/{other}/cancel").status_code == 200


def test_token_is_stored_hashed_and_revoked_or_expired_tokens_fail(team: Team) -> None:
    with session_scope(team.url) as session:
        rows = session.scalars(select(ApiToken)).all()
        stored = {value for row in rows for value in (row.token_hash, row.prefix, row.name)}
    for token in team.tokens.values():
        assert token not in stored
        assert token.startswith("unisd_")
    created = team.post("alice", "/tokens", json={"name": "ci", "expires_in_days": 1})
    assert created.status_code == 201
    token, token_id = created.json()["token"], created.json()["id"]
    headers = {"Authorization": f"Bearer {token}"}
    assert team.client.get("/api/v1/auth/me", headers=headers).json()["email"] == (
        "alice@example.org"
    )
    assert "token" not in team.get("alice", "/tokens").json()[0]
    assert (
        team.client.delete(f"/api/v1/tokens/{token_id}", headers=team.headers("bob")).status_code
        == 404
    )
    assert team.client.delete(f"/api/v1/tokens/{token_id}", headers=headers).status_code == 200
    assert team.client.get("/api/v1/runs", headers=headers).status_code == 401
    with session_scope(team.url) as session:
        user = auth.user_by_email(session, "bob@example.org")
        _, expired = auth.create_token(session, user, expires_at=utcnow() - timedelta(seconds=1))
    response = team.client.get("/api/v1/runs", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]


def test_read_only_token_cannot_write(team: Team) -> None:
    with session_scope(team.url) as session:
        user = auth.user_by_email(session, "alice@example.org")
        _, token = auth.create_token(session, user, scopes=["read"])
    headers = {"Authorization": f"Bearer {token}"}
    assert team.client.get("/api/v1/runs", headers=headers).status_code == 200
    assert team.client.post("/api/v1/runs", headers=headers, json=RUN).status_code == 403


def test_admin_manages_users_and_members_cannot(team: Team) -> None:
    body = {"email": "new@example.org", "role": "viewer"}
    assert team.post("alice", "/users", json=body).status_code == 403
    created = team.post("admin", "/users", json=body)
    assert created.status_code == 201 and created.json()["role"] == "viewer"
    assert team.post("admin", "/users", json=body).status_code == 409
    bad = team.post("admin", "/users", json={"email": "x", "role": "god"})
    assert bad.status_code == 422
    assert {f["path"] for f in bad.json()["error"]["fields"]} >= {"email", "role"}
    user_id = created.json()["id"]
    patched = team.client.patch(
        f"/api/v1/users/{user_id}", headers=team.headers("admin"), json={"is_active": False}
    )
    assert patched.json()["is_active"] is False
    assert len(team.get("admin", "/users").json()["items"]) == 5


def test_login_sets_a_signed_cookie_that_authenticates(team: Team) -> None:
    client = team.client
    wrong = client.post("/api/v1/auth/login", json={"email": "alice@example.org", "password": "x"})
    assert wrong.status_code == 401
    ok = client.post(
        "/api/v1/auth/login", json={"email": "Alice@example.org", "password": "password-1"}
    )
    assert ok.status_code == 200
    assert client.get("/api/v1/auth/me").json()["email"] == "alice@example.org"
    tampered = client.cookies["unisd_session"][:-4] + "AAAA"
    client.cookies.clear()
    client.cookies.set("unisd_session", tampered)
    assert client.get("/api/v1/auth/me").status_code == 401
    client.cookies.clear()


def test_login_is_disabled_without_a_session_secret(sqlite_url: str) -> None:
    settings = Settings(database_url=sqlite_url, broker_url=DEAD_BROKER, auth="on")
    with TestClient(create_app(settings, with_ui=False)) as client:
        response = client.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "p"})
        assert response.status_code == 503


def test_bootstrap_token_acts_as_admin(sqlite_url: str) -> None:
    settings = Settings(
        database_url=sqlite_url, broker_url=DEAD_BROKER, auth="on", api_token="s3cret-bootstrap"
    )
    with TestClient(create_app(settings, with_ui=False)) as client:
        me = client.get("/api/v1/auth/me", headers={"Authorization": "Bearer s3cret-bootstrap"})
        assert me.json()["role"] == "admin"


def test_cli_bootstraps_a_user_and_prints_the_token_last(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNISD_")}
    env["UNISD_DATA_DIR"] = str(tmp_path)
    cli = [sys.executable, "-m", "unisd_core.cli"]
    created = subprocess.run(
        [*cli, "users", "create", "root@example.org", "--role", "admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    out = subprocess.run(
        [*cli, "tokens", "create", "root@example.org", "--name", "ci"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    url = f"sqlite:///{tmp_path / 'unisd.db'}"
    with session_scope(url) as session:
        principal = auth.authenticate_token(session, token)
    assert (principal.email, principal.role) == ("root@example.org", "admin")
    dup = subprocess.run(
        [*cli, "users", "create", "root@example.org"], env=env, capture_output=True, text=True
    )
    assert dup.returncode == 1 and "already exists" in dup.stderr
