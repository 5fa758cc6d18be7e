"""`read_without_transaction`: a read route's statements run outside a transaction, and the
pooled connection goes back to the pool in its usual (transactional) mode; the run list uses it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event, func, select
from sqlalchemy.orm import Session

from backend.db.models import Run
from backend.db.session import engine_for, read_without_transaction, session_factory
from tests.backend.conftest import Team


def in_transaction(session: Session) -> bool:
    dbapi: Any = session.connection().connection.dbapi_connection
    if session.get_bind().dialect.name == "postgresql":
        from psycopg.pq import TransactionStatus

        return bool(dbapi.info.transaction_status != TransactionStatus.IDLE)
    return bool(dbapi.in_transaction)


def test_reads_run_outside_a_transaction_and_the_pool_keeps_its_mode(db_url: str) -> None:
    factory = session_factory(db_url)
    with factory() as session:
        read_without_transaction(session)
        assert session.scalar(select(func.count(Run.id))) == 0
        session.execute(Run.__table__.update().where(Run.id == -1).values(notes="x"))
        assert not in_transaction(session)  # no BEGIN was sent, so no COMMIT is owed
        session.commit()
    with factory() as session:  # the same pooled connection, back in transactional mode
        session.execute(Run.__table__.update().where(Run.id == -1).values(notes="x"))
        assert in_transaction(session)
        session.rollback()


def test_the_run_list_reads_its_token_and_page_in_autocommit_mode(any_team: Team) -> None:
    any_team.post("alice", "/runs", json={"name": "a", "train": {"max_steps": 9}})
    modes: list[object] = []

    def record(connection: Connection, *_: object) -> None:
        modes.append(connection.get_execution_options().get("isolation_level"))

    engine = engine_for(any_team.url)
    event.listen(engine, "before_cursor_execute", record)
    try:
        listed = any_team.get("alice", "/runs", params={"latest": "loss/total"})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert listed.status_code == 200 and listed.json()["total"] == 1
    assert modes and set(modes) == {"AUTOCOMMIT"}  # the token lookup and the page's query
