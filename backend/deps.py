"""FastAPI dependencies: settings, a database session per request, who the request acts as."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from backend.auth import service as auth_service
from backend.auth.security import read_session
from backend.auth.service import Principal
from backend.db.session import session_factory
from backend.errors import Unauthorized
from backend.settings import Settings

SESSION_COOKIE = "unisd_session"
MAX_ID = 2**31 - 1
#: Every `{..._id}` in a path: a positive 32-bit integer (larger ones are 422, not a DB error).
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


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


def current_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """A personal token (Bearer), the bootstrap token, or a UI session cookie.

    In local mode (auth off, loopback only, checked at start) every request is the local admin.
    """
    if settings.auth == "off":
        return auth_service.local_admin(session)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        token = token.strip()
        bootstrap = settings.api_token.get_secret_value() if settings.api_token else ""
        if bootstrap and secrets.compare_digest(token.encode(), bootstrap.encode()):
            return Principal(None, "bootstrap-token", "admin")
        return auth_service.authenticate_token(session, token)
    cookie = request.cookies.get(SESSION_COOKIE)
    secret = settings.resolved_session_secret
    if cookie and secret:
        user_id = read_session(cookie, secret)
        if user_id is not None:
            return auth_service.active_user(session, user_id)
    raise Unauthorized("a valid 'Authorization: Bearer <token>' header is required")


PrincipalDep = Annotated[Principal, Depends(current_principal)]
require_auth = current_principal  # the name the skeleton used
