"""`read_without_transaction`: a read route's statements run outside a transaction, and the
pooled connection goes back to the pool in its usual (transactional) mode."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.db.models import Run
from backend.db.session import read_without_transaction, session_factory


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
