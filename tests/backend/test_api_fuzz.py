"""Property-based fuzzing of the whole OpenAPI schema: no input gives a server error.

Every operation gets a bounded number of valid and invalid generated requests (schemathesis),
once in local mode (auth off) and once with auth on, where the requests carry a real admin's
personal token and the same operations called without credentials must answer 401 (never a
500, never a success). Each test stays around half a minute on two cores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from backend.auth import service as auth
from backend.db.session import session_scope
from backend.errors import AppError
from backend.main import create_app
from backend.settings import Settings
from tests.backend.conftest import MEMORY_BROKER

EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 10, schemathesis.GenerationMode.NEGATIVE: 6}
#: Without credentials: a few valid requests per operation (they must reach the auth check).
UNAUTHENTICATED = {schemathesis.GenerationMode.POSITIVE: 3, schemathesis.GenerationMode.NEGATIVE: 2}
#: The routes anyone may call; every other operation needs a token or a session cookie.
PUBLIC_PATHS = {"/api/v1/health", "/api/v1/auth/login", "/api/v1/auth/logout"}
#: What a client might send instead of valid credentials.
BAD_CREDENTIALS: list[dict[str, Any]] = [
    {"headers": {"Authorization": "Bearer unisd_not-a-token"}},
    {"headers": {"Authorization": "Bearer "}},
    {"headers": {"Authorization": "Basic YWRtaW46YWRtaW4="}},
    {"headers": {"Authorization": "bearer\tx y z"}},
    {"cookies": {"unisd_session": "not-a-signed-cookie"}},
    {"cookies": {"unisd_session": "MS45OTk5OTk5OTk5LmJhZA=="}},  # "1.9999999999.bad"
]

Check = Callable[[schemathesis.Case, schemathesis.GenerationMode], None]


def migrated_app(tmp_path: Path, **overrides: Any) -> tuple[str, FastAPI]:
    from backend.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'unisd.db'}"
    upgrade(url)
    values: dict[str, Any] = {
        "database_url": url,
        "broker_url": MEMORY_BROKER,
        "data_dir": tmp_path,
        **overrides,
    }
    return url, create_app(Settings.model_validate(values), with_ui=False)


def fuzz(app: FastAPI, examples: dict[schemathesis.GenerationMode, int], check: Check) -> int:
    """Run `check` on generated cases (and their mode) of every operation; returns how many
    operations there were."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = 0
    for result in schema.get_all_operations():
        operations += 1
        for mode, count in examples.items():
            try:
                run_cases(result.ok(), mode, count, check)
            except Unsatisfiable:  # e.g. no invalid input exists for an operation without inputs
                continue
    return operations


def run_cases(operation: Any, mode: schemathesis.GenerationMode, count: int, check: Check) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        check(case, mode)

    run()


def describe(case: schemathesis.Case, response: Any) -> str:
    return (
        f"{case.method} {case.formatted_path} query={case.query} body={str(case.body)[:300]} "
        f"-> {response.status_code} {response.text[:300]}"
    )


@pytest.mark.slow
def test_no_input_gives_a_server_error(tmp_path: Path) -> None:
    _, app = migrated_app(tmp_path, auth="off")
    failures: list[str] = []

    def check(case: schemathesis.Case, _: schemathesis.GenerationMode) -> None:
        response = case.call()
        if response.status_code >= 500:
            failures.append(describe(case, response))

    assert fuzz(app, EXAMPLES, check) >= 30
    assert not failures, "\n".join(failures[:20])


class AdminToken:
    """A real admin's personal token, made by the auth service as `unisd admin` makes one.

    The fuzzer acts as that admin, so it may revoke the token, disable the user or demote it
    (all legitimate requests): before each case the token is checked, and a fresh admin with a
    fresh token replaces one that no longer authenticates as an admin.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.minted = 0
        self.token = self._mint()

    def _mint(self) -> str:
        self.minted += 1
        with session_scope(self.url) as session:
            user = auth.create_user(session, f"fuzz-admin-{self.minted}@example.org", "admin")
            return auth.create_token(session, user, name="fuzz")[1]

    def headers(self) -> dict[str, str]:
        try:
            with session_scope(self.url) as session:
                still_admin = auth.authenticate_token(session, self.token).is_admin
        except AppError:
            still_admin = False
        if not still_admin:
            self.token = self._mint()
        return {"Authorization": f"Bearer {self.token}"}


@pytest.mark.slow
def test_with_auth_on_no_input_gives_a_server_error_and_no_credentials_give_401(
    tmp_path: Path,
) -> None:
    url, app = migrated_app(tmp_path, auth="on", session_secret="fuzz-session-secret")
    admin = AdminToken(url)
    failures: list[str] = []
    statuses: list[int] = []

    def as_admin(case: schemathesis.Case, _: schemathesis.GenerationMode) -> None:
        response = case.call(headers=admin.headers())
        statuses.append(response.status_code)
        if response.status_code >= 500:
            failures.append(describe(case, response))

    assert fuzz(app, EXAMPLES, as_admin) >= 30
    # the token really opened the API: most requests got past authentication
    assert sum(status == 401 for status in statuses) < len(statuses) / 10
    assert sum(status < 300 for status in statuses) > 50

    checked = {"protected": 0}

    def without_credentials(case: schemathesis.Case, mode: schemathesis.GenerationMode) -> None:
        attempts = [case.call(), *(case.call(**bad) for bad in BAD_CREDENTIALS)]
        for response in attempts:
            if response.status_code >= 500:
                failures.append(describe(case, response))
            elif case.operation.path not in PUBLIC_PATHS:
                checked["protected"] += 1
                # A valid request is refused at the auth check; an invalid one may be refused
                # earlier (malformed JSON is 422), but nothing protected ever succeeds.
                valid = mode == schemathesis.GenerationMode.POSITIVE
                if response.status_code != 401 and (valid or response.status_code < 400):
                    failures.append(f"without credentials: {describe(case, response)}")

    fuzz(app, UNAUTHENTICATED, without_credentials)
    assert checked["protected"] > 100
    assert not failures, "\n".join(failures[:20])
