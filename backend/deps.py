"""FastAPI dependencies: settings, a database session per request, authentication."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from backend.db.session import session_factory
from backend.errors import Unauthorized
from backend.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    session = session_factory(settings.resolved_database_url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def require_auth(request: Request, settings: SettingsDep) -> None:
    """Bearer token check; a no-op only in local mode (auth off, loopback, checked at start)."""
    if settings.auth == "off":
        return
    expected = settings.api_token.get_secret_value() if settings.api_token else ""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not secrets.compare_digest(token, expected):
        raise Unauthorized("a valid 'Authorization: Bearer <token>' header is required")
