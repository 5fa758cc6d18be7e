"""Typed HTTP client for `/api/v1`: the UI's only way to the data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel


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


class Run(BaseModel):
    id: int
    name: str | None = None
    status: str
    preset: str | None = None
    base_model: str
    dataset: str
    seed: int
    step: int = 0
    total_steps: int = 0
    progress: float = 0.0
    error: str | None = None
    config: dict[str, Any] = {}
    created_at: datetime
    finished_at: datetime | None = None


class Point(BaseModel):
    step: int
    value: float


class StudioClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=f"{base_url}/api/v1", headers=headers, timeout=timeout)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"the API is unreachable ({exc.__class__.__name__})") from exc
        if response.is_success:
            return response.json()
        try:
            error = response.json()["error"]
            raise ApiError(response.status_code, error["message"], error.get("fields"))
        except (ValueError, KeyError, TypeError):
            raise ApiError(response.status_code, response.text[:300]) from None

    def create_run(self, config: dict[str, Any]) -> Run:
        return Run.model_validate(self._request("POST", "/runs", json=config))

    def list_runs(self, limit: int = 100) -> list[Run]:
        body = self._request("GET", "/runs", params={"limit": limit})
        return [Run.model_validate(item) for item in body["items"]]

    def get_run(self, run_id: int) -> Run:
        return Run.model_validate(self._request("GET", f"/runs/{run_id}"))

    def cancel_run(self, run_id: int) -> Run:
        return Run.model_validate(self._request("POST", f"/runs/{run_id}/cancel"))

    def metrics(self, run_id: int, keys: list[str]) -> dict[str, list[Point]]:
        body = self._request("GET", f"/runs/{run_id}/metrics", params={"keys": ",".join(keys)})
        return {k: [Point.model_validate(p) for p in pts] for k, pts in body["metrics"].items()}
