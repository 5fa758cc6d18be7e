"""`column IN (ids)` for long id lists, bound as one parameter where the driver allows it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Engine, Integer, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session


def dialect_name(session: Session) -> str:
    bind = session.get_bind()
    return bind.dialect.name if isinstance(bind, Engine) else bind.engine.dialect.name


def in_ids(session: Session, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column` is one of `ids` (a page of runs: up to a thousand).

    On PostgreSQL the ids travel as one integer array (`= ANY(:ids)`): an expanded IN of a
    thousand placeholders is re-rendered by SQLAlchemy and re-parsed by psycopg on every call,
    which cost more than the lookup. SQLite's driver binds many placeholders cheaply.
    """
    if dialect_name(session) == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    return column.in_(list(ids))
