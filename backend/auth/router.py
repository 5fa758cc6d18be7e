"""Routes for login (UI session cookie), the current user, users (admin) and personal tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from backend.auth import service
from backend.auth.schemas import (
    Login,
    Me,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserList,
    UserOut,
    UserUpdate,
)
from backend.auth.security import sign_session
from backend.db.base import utcnow
from backend.deps import SESSION_COOKIE, PathId, PrincipalDep, SessionDep, SettingsDep
from backend.errors import Forbidden, Unavailable

public_router = APIRouter(prefix="/auth", tags=["auth"])
router = APIRouter(tags=["auth"])


@public_router.post("/login", response_model=Me)
def login(body: Login, response: Response, session: SessionDep, settings: SettingsDep) -> Me:
    """Check email and password; set the signed, HTTP-only session cookie the UI uses."""
    secret = settings.resolved_session_secret
    if secret is None:
        raise Unavailable("browser login is disabled: set UNISD_SESSION_SECRET on the server")
    user = service.authenticate_password(session, body.email, body.password)
    response.set_cookie(
        SESSION_COOKIE,
        sign_session(user.id, secret, settings.session_max_age_s),
        max_age=settings.session_max_age_s,
        httponly=True,
        samesite="lax",
        secure=settings.auth == "on" and not settings.host.startswith("127."),
    )
    return Me(user_id=user.id, email=user.email, role=user.role, scopes=["read", "write"])


@public_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(response: Response) -> Response:
    response.delete_cookie(SESSION_COOKIE)
    response.status_code = status.HTTP_204_NO_CONTENT
    return response


@router.get("/auth/me", response_model=Me)
def me(principal: PrincipalDep) -> Me:
    return Me(
        user_id=principal.user_id,
        email=principal.email,
        role=principal.role,
        scopes=sorted(principal.scopes),
    )


@router.get("/users", response_model=UserList)
def list_users(
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> UserList:
    principal.require_admin()
    users, total = service.list_users(session, limit=limit, offset=offset)
    return UserList(
        items=[UserOut.model_validate(u) for u in users], total=total, limit=limit, offset=offset
    )


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user(body: UserCreate, principal: PrincipalDep, session: SessionDep) -> UserOut:
    principal.require_admin()
    user = service.create_user(
        session, body.email, body.role, name=body.name, password=body.password
    )
    return UserOut.model_validate(user)


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(
    user_id: PathId, body: UserUpdate, principal: PrincipalDep, session: SessionDep
) -> UserOut:
    principal.require_admin()
    user = service.update_user(session, user_id, **body.model_dump(exclude_unset=True))
    return UserOut.model_validate(user)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(principal: PrincipalDep, session: SessionDep) -> list[TokenOut]:
    if principal.user_id is None:
        return []
    return [TokenOut.model_validate(t) for t in service.list_tokens(session, principal.user_id)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
def create_token(body: TokenCreate, principal: PrincipalDep, session: SessionDep) -> TokenCreated:
    """A personal token for the caller (scopes at most the caller's own)."""
    if principal.user_id is None:
        raise Forbidden("the bootstrap token cannot own tokens; use `unisd tokens create`")
    if not set(body.scopes) <= principal.scopes:
        raise Forbidden("a token cannot have scopes its creator lacks")
    user = service.get_user(session, principal.user_id)
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row, token = service.create_token(
        session, user, name=body.name, scopes=list(body.scopes), expires_at=expires
    )
    return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=token)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: PathId, principal: PrincipalDep, session: SessionDep) -> TokenOut:
    return TokenOut.model_validate(service.revoke_token(session, principal, token_id))
