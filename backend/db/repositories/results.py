"""What workers record about a run: events (its log), artifacts and evaluations.

Each function works inside the caller's session and transaction; none commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from backend.db.base import utcnow
from backend.db.models import ARTIFACT_KINDS, EVENT_LEVELS, Artifact, Evaluation, RunEvent

MAX_EVENT_CHARS = 20_000


def _insert(session: Session) -> Any:
    bind = session.get_bind()
    name = bind.dialect.name if isinstance(bind, Engine) else bind.engine.dialect.name
    return pg_insert if name == "postgresql" else sqlite_insert


def append_run_event(session: Session, run_id: int, level: str, message: str) -> RunEvent:
    """Add a line to the run's log (`level`: debug|info|warning|error; long text is cut)."""
    if level not in EVENT_LEVELS:
        raise ValueError(f"level must be one of {EVENT_LEVELS}, not {level!r}")
    event = RunEvent(run_id=run_id, level=level, message=message[:MAX_EVENT_CHARS], time=utcnow())
    session.add(event)
    session.flush()
    return event


def add_artifact(
    session: Session,
    run_id: int,
    kind: str,
    name: str,
    uri: str,
    size: int,
    sha256: str | None = None,
) -> Artifact:
    """Record a file of the run; idempotent on (run_id, name): a re-upload replaces the row."""
    if kind not in ARTIFACT_KINDS:
        raise ValueError(f"kind must be one of {ARTIFACT_KINDS}, not {kind!r}")
    values = {
        "run_id": run_id,
        "kind": kind,
        "name": name,
        "uri": uri,
        "size": int(size),
        "sha256": sha256,
        "created_at": utcnow(),
    }
    statement = _insert(session)(Artifact).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "name"],
        set_={k: statement.excluded[k] for k in ("kind", "uri", "size", "sha256", "created_at")},
    )
    session.execute(statement)
    artifact = session.scalars(
        select(Artifact)
        .where(Artifact.run_id == run_id, Artifact.name == name)
        .execution_options(populate_existing=True)
    ).one()
    return artifact


def add_evaluation(
    session: Session,
    run_id: int,
    benchmark: str,
    metric: str,
    value: float,
    *,
    n: int | None = None,
    split: str = "test",
    details_artifact: str | None = None,
) -> Evaluation:
    """Record a score; idempotent on (run_id, benchmark, metric, split): re-evaluating updates."""
    values = {
        "run_id": run_id,
        "benchmark": benchmark,
        "metric": metric,
        "split": split,
        "value": float(value),
        "n": n,
        "details_artifact": details_artifact,
        "created_at": utcnow(),
    }
    statement = _insert(session)(Evaluation).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "benchmark", "metric", "split"],
        set_={k: statement.excluded[k] for k in ("value", "n", "details_artifact", "created_at")},
    )
    session.execute(statement)
    return session.scalars(
        select(Evaluation)
        .where(
            Evaluation.run_id == run_id,
            Evaluation.benchmark == benchmark,
            Evaluation.metric == metric,
            Evaluation.split == split,
        )
        .execution_options(populate_existing=True)
    ).one()
