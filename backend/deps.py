"""FastAPI dependencies: settings, a database session per request, who the request acts as."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from backend.auth import service as auth_service
from backend.auth.security import read_session
from backend.auth.service import Principal
from backend.db.session import session_factory
from backend.errors import Unauthorized
from backend.settings import Settings

T = TypeVar("T")

SESSION_COOKIE = "unisd_session"
MAX_ID = 2**31 - 1
#: Every `{..._id}` in a path: a positive 32-bit integer (larger ones are 422, not a DB error).
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


# Every sync dependency and every sync route runs in a worker thread of its own: a hop to the
# thread pool and back per dependency. On a busy machine each hop waits for the scheduler, and an
# ingest request once made six of them. So the dependencies that do no I/O are `async` (they run
# on the event loop), and the session's setup and teardown hop only when there is I/O to do.


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    """A session per request, committed when the route succeeds, rolled back when it fails.

    Creating a session does no I/O (it connects on first use), so that happens on the event
    loop; a transaction still open at the end is committed or rolled back in a worker thread.
    A route that commits itself (the ingest path) thus costs no hop here at all.
    """
    session = session_factory(settings.resolved_database_url)()
    try:
        yield session
    except BaseException:
        await _finish(session, commit=False)
        raise
    await _finish(session, commit=True)


async def _finish(session: Session, *, commit: bool) -> None:
    if not session.in_transaction():
        session.close()  # nothing to end: no I/O
        return

    def end() -> None:
        try:
            if commit:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()

    # Shielded, so a client that hangs up cannot leave the transaction open; a limiter of its
    # own (as FastAPI does for its sync generator dependencies), so that ending a transaction,
    # which frees a pooled connection, never waits behind requests that wait for a connection.
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(end, limiter=anyio.CapacityLimiter(1))


# Scope "function": the session ends (and commits) before the response is sent. With FastAPI's
# default, "request", it ended after the response was out: a client could be told 200 for a
# write whose commit then failed, and its next request could read before that commit.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def current_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """Who the request acts as (see `authenticate`): the dependency of every API router."""
    return authenticate(request, session, settings)


def authenticate(request: Request, session: Session, settings: Settings) -> Principal:
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


# --------------------------------------------------------------------------- large JSON bodies


def inline_schema(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """`adapter`'s JSON schema with its nested types written in place, for `openapi_extra`.

    Pydantic puts nested models under `$defs` with `#/$defs/...` references, which do not
    resolve inside an OpenAPI document; the models are small, so they are inlined instead.
    """
    schema = adapter.json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return dict(resolve(schema))


def json_body_openapi(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a route that reads its body with `parse_json_body`."""
    content = {"application/json": {"schema": inline_schema(adapter)}}
    return {"requestBody": {"required": True, "content": content}}


def parse_json_body(request: Request, body: bytes, adapter: TypeAdapter[T]) -> T:
    """`body` (the request's bytes) validated by `adapter`.

    FastAPI decodes a body with the standard library into Python objects and validates those;
    for a metrics batch (thousands of points) that was most of the request's time. Pydantic's
    own JSON parser validates the bytes in one pass. Errors are FastAPI's: 422 naming the
    field under `body`, malformed JSON with its character offset.
    """
    content_type = request.headers.get("content-type", "application/json")
    media = content_type.partition(";")[0].strip().lower()
    if not (media == "application/json" or media.endswith("+json")):
        raise RequestValidationError(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ("body",),
                    "msg": f"expected a JSON body (content-type application/json), not {media!r}",
                    "input": None,
                }
            ]
        )
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            _raise_json_error(body)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None


def _raise_json_error(body: bytes) -> None:
    # Error path only: the standard parser names the offset of the first bad character.
    try:
        json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        position = exc.pos if isinstance(exc, json.JSONDecodeError) else exc.start
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else exc.reason
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", position),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": reason},
                }
            ]
        ) from None
    raise RequestValidationError(
        [{"type": "json_invalid", "loc": ("body",), "msg": "invalid JSON", "input": {}}]
    )
