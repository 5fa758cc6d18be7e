"""Typed HTTP client for `/api/v1`: the UI's only way to the data.

Response models accept extra fields, so the UI keeps working while the API grows. Endpoints that a
server does not offer yet raise `ApiError` with status 404/405, which the UI shows as a message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict


class ApiError(RuntimeError):
    """An API error, with the server's message (and field paths) ready to show to a user."""

    def __init__(self, status: int, message: str, fields: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or []

    def __str__(self) -> str:
        if not self.fields:
            return self.message
        return "; ".join(f"{f.get('path')}: {f.get('message')}" for f in self.fields)

    @property
    def missing_endpoint(self) -> bool:
        return self.status in (404, 405) and "not found" in self.message.lower()


SESSION_COOKIE = "unisd_session"


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Run(Model):
    id: int
    name: str | None = None
    status: str
    preset: str | None = None
    base_model: str = ""
    dataset: str = ""
    seed: int = 0
    step: int = 0
    total_steps: int = 0
    progress: float = 0.0
    error: str | None = None
    config: dict[str, Any] = {}
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    tags: list[str] = []
    notes: str | None = None
    sweep_id: int | None = None
    experiment_id: int | None = None
    eta_at: datetime | None = None
    tokens_per_s: float | None = None
    queue_position: int | None = None
    design_point: dict[str, Any] | None = None
    latest: dict[str, float] | None = None


class Point(Model):
    step: int
    value: float
    wall_time: float | None = None


class Evaluation(Model):
    run_id: int | None = None
    benchmark: str
    split: str | None = None
    metric: str
    value: float
    n: int | None = None


class Artifact(Model):
    name: str = ""
    kind: str = ""
    size: int | None = None
    uri: str | None = None


class RunEvent(Model):
    time: datetime | None = None
    level: str = "info"
    message: str


class SweepProgress(Model):
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    running: int = 0
    queued: int = 0
    fraction_done: float = 0.0


class Sweep(Model):
    id: int
    name: str | None = None
    status: str = ""
    design: str | None = None
    template: str | None = None  # e.g. paper-table; its analysis is then the paper's table
    template_options: dict[str, Any] | None = None
    base_preset: str | None = None
    factors: list[Any] = []
    seeds: list[Any] = []
    run_count: int = 0
    estimated_gpu_hours: float | None = None
    progress: SweepProgress | None = None
    run_ids: list[int] = []
    created_at: datetime | None = None


class SweepPreview(Model):
    design: str
    factors: list[str] = []
    seeds: list[int] = []
    points: list[dict[str, Any]] = []
    run_count: int
    estimated_gpu_hours: float
    estimate_basis: str = ""
    aliases: dict[str, list[str]] = {}


class Experiment(Model):
    id: int
    name: str
    description: str | None = None


class Token(Model):
    id: int
    name: str | None = None
    prefix: str | None = None
    token: str | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None


def _items(body: Any) -> list[Any]:
    if isinstance(body, dict):
        for key in ("items", "data", "results"):
            if isinstance(body.get(key), list):
                return list(body[key])
        return []
    return list(body) if isinstance(body, list) else []


SESSION_PREFIX = "session:"


class StudioClient:
    """`token` is an API token, or `session:<cookie>` for a user signed in with a password."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers: dict[str, str] = {}
        cookies: dict[str, str] = {}
        if token and token.startswith(SESSION_PREFIX):
            cookies[SESSION_COOKIE] = token.removeprefix(SESSION_PREFIX)
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=f"{self.base_url}/api/v1", headers=headers, cookies=cookies, timeout=timeout
        )

    def with_token(self, token: str | None) -> StudioClient:
        return StudioClient(self.base_url, token)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"the API is unreachable ({exc.__class__.__name__})") from exc
        if response.is_success:
            return response.json() if response.content else None
        try:
            error = response.json()["error"]
            raise ApiError(response.status_code, error["message"], error.get("fields"))
        except (ValueError, KeyError, TypeError):
            pass
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        message = detail if isinstance(detail, str) else response.text[:300]
        raise ApiError(response.status_code, message or response.reason_phrase)

    # --- service ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        body = self._request("GET", "/health")
        return body if isinstance(body, dict) else {}

    # --- runs ------------------------------------------------------------------------------

    def create_run(self, config: dict[str, Any]) -> Run:
        return Run.model_validate(self._request("POST", "/runs", json=config))

    def list_runs(self, limit: int = 200, **filters: Any) -> list[Run]:
        """Newest first; filters: status, preset, q (text), sweep_id, tag, latest (keys)."""
        params = {"limit": limit, **{k: v for k, v in filters.items() if v not in (None, "")}}
        return [Run.model_validate(i) for i in _items(self._request("GET", "/runs", params=params))]

    def get_run(self, run_id: int) -> Run:
        return Run.model_validate(self._request("GET", f"/runs/{run_id}"))

    def cancel_run(self, run_id: int) -> Run:
        return Run.model_validate(self._request("POST", f"/runs/{run_id}/cancel"))

    def retry_run(self, run_id: int) -> Run:
        return Run.model_validate(self._request("POST", f"/runs/{run_id}/retry"))

    def delete_run(self, run_id: int) -> None:
        self._request("DELETE", f"/runs/{run_id}")

    def clone_run(self, run_id: int, overrides: dict[str, Any] | None = None) -> Run:
        body = {"overrides": overrides or {}}
        return Run.model_validate(self._request("POST", f"/runs/{run_id}/clone", json=body))

    def update_run(
        self, run_id: int, *, tags: list[str] | None = None, notes: str | None = None
    ) -> Run:
        body: dict[str, Any] = {}
        if tags is not None:
            body["tags"] = tags
        if notes is not None:
            body["notes"] = notes
        return Run.model_validate(self._request("PATCH", f"/runs/{run_id}", json=body))

    def metrics(
        self, run_id: int, keys: list[str] | None = None, max_points: int | None = None
    ) -> dict[str, list[Point]]:
        params: dict[str, Any] = {"keys": ",".join(keys or [])}
        if max_points:
            params["max_points"] = max_points
        body = self._request("GET", f"/runs/{run_id}/metrics", params=params)
        return {k: [Point.model_validate(p) for p in pts] for k, pts in body["metrics"].items()}

    def events(self, run_id: int, limit: int = 200) -> list[RunEvent]:
        body = self._request("GET", f"/runs/{run_id}/events", params={"limit": limit})
        return [RunEvent.model_validate(e) for e in _items(body)]

    def evaluations(self, run_id: int) -> list[Evaluation]:
        body = self._request("GET", f"/runs/{run_id}/evaluations")
        return [Evaluation.model_validate(e) for e in _items(body)]

    def evaluations_for(self, run_ids: list[int]) -> list[Evaluation]:
        if not run_ids:
            return []
        params = {"run_ids": ",".join(map(str, run_ids))}
        return [
            Evaluation.model_validate(e)
            for e in _items(self._request("GET", "/evaluations", params=params))
        ]

    def artifacts(self, run_id: int) -> list[Artifact]:
        body = self._request("GET", f"/runs/{run_id}/artifacts")
        return [Artifact.model_validate(a) for a in _items(body)]

    def artifact_url(self, run_id: int, name: str) -> str:
        return f"{self.base_url}/api/v1/runs/{run_id}/artifacts/{name}"

    def artifact_text(self, run_id: int, name: str, limit: int = 200_000) -> str:
        try:
            response = self._http.get(f"/runs/{run_id}/artifacts/{name}")
        except httpx.HTTPError as exc:
            raise ApiError(0, f"the API is unreachable ({exc.__class__.__name__})") from exc
        if not response.is_success:
            raise ApiError(response.status_code, f"artifact {name!r} is not available")
        return response.text[:limit]

    # --- sweeps ----------------------------------------------------------------------------

    def preview_sweep(self, body: dict[str, Any]) -> SweepPreview:
        return SweepPreview.model_validate(self._request("POST", "/sweeps/preview", json=body))

    def create_sweep(self, body: dict[str, Any]) -> Sweep:
        return Sweep.model_validate(self._request("POST", "/sweeps", json=body))

    def list_sweeps(self) -> list[Sweep]:
        return [Sweep.model_validate(s) for s in _items(self._request("GET", "/sweeps"))]

    def get_sweep(self, sweep_id: int) -> Sweep:
        return Sweep.model_validate(self._request("GET", f"/sweeps/{sweep_id}"))

    def sweep_analysis(self, sweep_id: int, **params: Any) -> dict[str, Any]:
        body = self._request("GET", f"/sweeps/{sweep_id}/analysis", params=params)
        return body if isinstance(body, dict) else {}

    # --- accounts --------------------------------------------------------------------------

    def login(self, email: str, password: str) -> str:
        """Sign in with a password: the session (as `session:<cookie>`) to act as that user."""
        try:
            response = self._http.post("/auth/login", json={"email": email, "password": password})
        except httpx.HTTPError as exc:
            raise ApiError(0, f"the API is unreachable ({exc.__class__.__name__})") from exc
        if not response.is_success:
            try:
                error = response.json()["error"]
                raise ApiError(response.status_code, error["message"], error.get("fields"))
            except (ValueError, KeyError, TypeError):
                raise ApiError(response.status_code, response.text[:300]) from None
        cookie = response.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise ApiError(500, "login succeeded but the API set no session")
        return SESSION_PREFIX + cookie

    def me(self) -> dict[str, Any]:
        body = self._request("GET", "/auth/me")
        return body if isinstance(body, dict) else {}

    def list_tokens(self) -> list[Token]:
        return [Token.model_validate(t) for t in _items(self._request("GET", "/tokens"))]

    def create_token(self, name: str) -> Token:
        return Token.model_validate(self._request("POST", "/tokens", json={"name": name}))

    def revoke_token(self, token_id: int) -> None:
        self._request("DELETE", f"/tokens/{token_id}")

    def list_experiments(self) -> list[Experiment]:
        return [Experiment.model_validate(e) for e in _items(self._request("GET", "/experiments"))]

    def create_experiment(self, name: str, description: str = "") -> Experiment:
        body = {"name": name, "description": description}
        return Experiment.model_validate(self._request("POST", "/experiments", json=body))
