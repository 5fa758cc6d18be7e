"""Run lifecycle rules for the API: create, list, get, cancel, read metrics."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.db import repositories
from backend.db.base import utcnow
from backend.db.models import COMPONENT_FLAGS, FINISHED_STATUSES, Run
from backend.errors import Conflict, NotFound
from unisd_core.config import RunConfig


def component_flags(config: RunConfig) -> dict[str, bool]:
    """The five component switches of a config (False for blocks a config does not have)."""
    return {
        name: bool(getattr(getattr(config, name, None), "enabled", False))
        for name in COMPONENT_FLAGS
    }


def run_from_config(config: RunConfig, *, queue: str) -> Run:
    """A new queued run row for `config` (not added to a session)."""
    train = config.train
    resources = getattr(config, "resources", None)
    return Run(
        name=config.name,
        status="queued",
        config=config.model_dump(mode="json"),
        config_hash=config.config_hash(),
        preset=config.preset,
        base_model=config.model.name_or_path,
        dataset=config.data.benchmark,
        seed=train.seed,
        queue=queue,
        total_steps=getattr(train, "max_steps", None) or 0,
        gpus=int(getattr(resources, "gpus", 1) or 1),
        **component_flags(config),
    )


def create_run(session: Session, config: RunConfig, *, queue: str) -> Run:
    run = run_from_config(config, queue=queue)
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return run


def list_runs(
    session: Session, *, status: str | None, limit: int, offset: int
) -> tuple[list[Run], int]:
    query = select(Run)
    if status is not None:
        query = query.where(Run.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Run.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def cancel_run(session: Session, run_id: int) -> Run:
    """A queued run is cancelled at once (it never starts); a running one stops at a step."""
    run = get_run(session, run_id)
    if run.status in FINISHED_STATUSES:
        raise Conflict(f"run {run_id} is already {run.status}")
    run.cancel_requested = True
    if run.status == "queued":
        run.status = "cancelled"
        run.finished_at = utcnow()
    return run


def run_metrics(
    session: Session, run_id: int, keys: list[str]
) -> dict[str, list[tuple[int, float]]]:
    get_run(session, run_id)
    return repositories.metric_series(
        session, run_id, keys or repositories.metric_keys(session, run_id)
    )
