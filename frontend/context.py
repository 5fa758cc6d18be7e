"""What every tab shares: the API client (per user token), element ids, and the token state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from frontend.client import ApiError, StudioClient
from frontend.ids import ElementIds


@dataclass
class Studio:
    client: StudioClient
    ids: ElementIds = field(default_factory=ElementIds)
    token: Any = None  # gr.State holding the signed-in user's token (team mode)
    _clients: dict[str, StudioClient] = field(default_factory=dict)

    def api(self, token: str | None) -> StudioClient:
        """The client for a browser session: the user's token when signed in, else the service's."""
        if not token:
            return self.client
        if token not in self._clients:
            self._clients[token] = self.client.with_token(token)
        return self._clients[token]


def error_text(exc: ApiError, doing: str) -> str:
    """A message for the user: what failed and why, never a traceback."""
    if exc.missing_endpoint:
        return f"Cannot {doing}: this server does not offer that yet ({exc.status})."
    if exc.status == 401:
        return f"**Error:** Cannot {doing}: sign in first (Account tab)."
    if exc.status == 403:
        return f"**Error:** Cannot {doing}: your role does not allow it."
    return f"**Error:** Cannot {doing}: {exc}"


def notify(exc: ApiError, doing: str) -> None:
    gr.Warning(error_text(exc, doing))
