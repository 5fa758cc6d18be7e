"""Accounts: users, roles, personal API tokens and who a request acts as."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.auth.security import hash_password, hash_token, new_token, verify_password
from backend.db.base import utcnow
from backend.db.models import ROLES, ApiToken, User
from backend.errors import Conflict, Forbidden, NotFound, Unauthorized

LOCAL_ADMIN_EMAIL = "local@localhost"
ALL_SCOPES = ("read", "write")


@dataclass(frozen=True)
class Principal:
    """Who a request acts as. `user_id` is None only for the bootstrap token."""

    user_id: int | None
    email: str
    role: str
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(ALL_SCOPES))

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_write(self) -> bool:
        return self.role in ("admin", "member") and "write" in self.scopes

    def require_write(self) -> None:
        if self.role == "viewer":
            raise Forbidden("viewers have read-only access")
        if "write" not in self.scopes:
            raise Forbidden("this token has no 'write' scope")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("only admins may do this")

    def require_owner_or_admin(self, owner_id: int | None, what: str) -> None:
        """Members change only what they created; admins change everything."""
        self.require_write()
        if not self.is_admin and (owner_id is None or owner_id != self.user_id):
            raise Forbidden(f"only its creator or an admin may change {what}")


def principal_of(user: User, scopes: list[str] | None = None) -> Principal:
    return Principal(user.id, user.email, user.role, frozenset(scopes or ALL_SCOPES))


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    session: Session,
    email: str,
    role: str,
    *,
    name: str | None = None,
    password: str | None = None,
) -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    email = normalise_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(
            f"a user with email {email!r} already exists",
            fields=[{"path": "email", "message": "already taken"}],
        )
    user = User(
        email=email,
        name=name,
        role=role,
        password_hash=hash_password(password) if password else None,
        is_active=True,
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"no user with email {email!r}")
    return user


def list_users(session: Session, *, limit: int, offset: int) -> tuple[list[User], int]:
    total = session.scalar(select(func.count()).select_from(User)) or 0
    rows = session.scalars(select(User).order_by(User.id).limit(limit).offset(offset))
    return list(rows), total


def update_user(
    session: Session,
    user_id: int,
    *,
    role: str | None = None,
    is_active: bool | None = None,
    name: str | None = None,
    password: str | None = None,
) -> User:
    user = get_user(session, user_id)
    if role is not None:
        user.role = role
    if is_active is not None:
        user.is_active = is_active
    if name is not None:
        user.name = name
    if password is not None:
        user.password_hash = hash_password(password)
    session.flush()
    return user


def create_token(
    session: Session,
    user: User,
    *,
    name: str = "default",
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new personal token: the row, and the token itself (shown once, never stored)."""
    token, prefix, digest = new_token()
    row = ApiToken(
        user_id=user.id,
        name=name,
        prefix=prefix,
        token_hash=digest,
        scopes=sorted(set(scopes or ALL_SCOPES)),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, token


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    rows = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
    )
    return list(rows)


def revoke_token(session: Session, principal: Principal, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or (not principal.is_admin and row.user_id != principal.user_id):
        raise NotFound(f"token {token_id} does not exist")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    session.flush()
    return row


# The token and its user in one query, built once: this runs before every authenticated
# request, and building the statement and loading two ORM objects cost more than running it.
_TOKEN = ApiToken.__table__.c
_USER = User.__table__.c
_TOKEN_LOOKUP = (
    select(
        _TOKEN.id,
        _TOKEN.scopes,
        _TOKEN.last_used_at,
        _TOKEN.expires_at,
        _TOKEN.revoked_at,
        _USER.id,
        _USER.email,
        _USER.role,
        _USER.is_active,
    )
    .join(User, _USER.id == _TOKEN.user_id)
    .where(_TOKEN.token_hash == bindparam("token_hash"))
)
_TOKEN_USED = (
    update(ApiToken).where(_TOKEN.id == bindparam("token_id")).values(last_used_at=bindparam("now"))
)


def authenticate_token(session: Session, token: str) -> Principal:
    """The principal of a valid token: not revoked, not expired, its user active.

    Read on every request, so revoking a token or disabling its user takes effect at once.
    """
    connection = session.connection()
    found = connection.execute(_TOKEN_LOOKUP, {"token_hash": hash_token(token)}).first()
    now = utcnow()
    if found is None or found[4] is not None:
        raise Unauthorized("invalid or revoked token")
    token_id, scopes, last_used_at, expires_at, _, user_id, email, role, is_active = found
    if expires_at is not None and expires_at <= now:
        raise Unauthorized("token expired")
    if not is_active:
        raise Unauthorized("the token's user is disabled")
    if last_used_at is None or (now - last_used_at).total_seconds() > 60:
        # at most one write a minute per token
        connection.execute(_TOKEN_USED, {"token_id": token_id, "now": now})
    return Principal(user_id, email, role, frozenset(scopes or ALL_SCOPES))


def authenticate_password(session: Session, email: str, password: str) -> User:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None or not user.is_active or not verify_password(password, user.password_hash):
        raise Unauthorized("wrong email or password")
    return user


def active_user(session: Session, user_id: int) -> Principal:
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("session expired; log in again")
    return principal_of(user)


def local_admin(session: Session) -> Principal:
    """Auth-off local mode: every request acts as this admin (created on first use)."""
    user = session.scalar(select(User).where(User.email == LOCAL_ADMIN_EMAIL))
    if user is None:
        try:
            with session.begin_nested():
                user = User(email=LOCAL_ADMIN_EMAIL, name="local", role="admin", is_active=True)
                session.add(user)
        except IntegrityError:  # another request created it first
            user = session.scalar(select(User).where(User.email == LOCAL_ADMIN_EMAIL))
    assert user is not None
    return principal_of(user)
