"""Alembic environment: the URL comes from the caller (tests, `unisd db upgrade`) or settings."""

from __future__ import annotations

from alembic import context

from backend.db import models  # noqa: F401  (registers every table on the metadata)
from backend.db.base import Base
from backend.db.session import make_engine
from backend.settings import get_settings

config = context.config
url = config.attributes.get("database_url") or get_settings().resolved_database_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by table copy
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
