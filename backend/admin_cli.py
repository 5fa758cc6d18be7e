"""`unisd users ...` and `unisd tokens ...`: bootstrap accounts from the shell.

Same settings as the server (UNISD_DATA_DIR, UNISD_DATABASE_URL). `tokens create` prints the new
token alone on the last line of stdout, so scripts can capture it with `tail -n1`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from backend.settings import get_settings

users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
tokens_app = typer.Typer(help="Personal API tokens.", no_args_is_help=True)


def _url() -> str:
    from backend.db.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)  # a fresh install has no tables yet
    return settings.resolved_database_url


@users_app.command("create")
def users_create(
    email: str,
    role: Annotated[str, typer.Option(help="admin | member | viewer")] = "member",
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password: Annotated[
        bool, typer.Option("--password", help="Prompt for a password (for the UI login).")
    ] = False,
) -> None:
    """Create a user."""
    from backend.auth import service
    from backend.db.models import ROLES
    from backend.db.session import session_scope
    from backend.errors import AppError

    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    secret = (
        typer.prompt("Password", hide_input=True, confirmation_prompt=True) if password else None
    )
    try:
        with session_scope(_url()) as session:
            user = service.create_user(session, email, role, name=name, password=secret)
            typer.echo(f"created user {user.id} {user.email} ({user.role})")
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


@users_app.command("list")
def users_list() -> None:
    """List users."""
    from backend.auth import service
    from backend.db.session import session_scope

    with session_scope(_url()) as session:
        users, _ = service.list_users(session, limit=10_000, offset=0)
        for user in users:
            state = "" if user.is_active else " (disabled)"
            typer.echo(f"{user.id}\t{user.email}\t{user.role}{state}")


@tokens_app.command("create")
def tokens_create(
    email: str,
    name: Annotated[str, typer.Option(help="A label for the token.")] = "cli",
    expires_in_days: Annotated[int | None, typer.Option(min=1, help="Expiry in days.")] = None,
    read_only: Annotated[bool, typer.Option(help="Only the 'read' scope.")] = False,
) -> None:
    """Create an API token for EMAIL and print it (once) on the last line."""
    from backend.auth import service
    from backend.db.base import utcnow
    from backend.db.session import session_scope
    from backend.errors import AppError

    try:
        with session_scope(_url()) as session:
            user = service.user_by_email(session, email)
            expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
            row, token = service.create_token(
                session,
                user,
                name=name,
                scopes=["read"] if read_only else ["read", "write"],
                expires_at=expires,
            )
            typer.echo(f"token {row.id} ({row.prefix}...) for {user.email}; store it now:")
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(token)


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by id."""
    from backend.auth import service
    from backend.auth.service import Principal
    from backend.db.session import session_scope
    from backend.errors import AppError

    try:
        with session_scope(_url()) as session:
            service.revoke_token(session, Principal(None, "cli", "admin"), token_id)
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked token {token_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
