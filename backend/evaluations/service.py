"""Evaluation scores of runs (written by the workers, read by the UI's tables)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.models import Evaluation, Run


def for_runs(
    session: Session, run_ids: list[int], *, benchmark: str | None = None
) -> list[Evaluation]:
    query = (
        select(Evaluation)
        .join(Run, Run.id == Evaluation.run_id)
        .where(Evaluation.run_id.in_(run_ids), Run.deleted_at.is_(None))
    )
    if benchmark is not None:
        query = query.where(Evaluation.benchmark == benchmark)
    order = (Evaluation.run_id, Evaluation.benchmark, Evaluation.split, Evaluation.metric)
    return list(session.scalars(query.order_by(*order)))
