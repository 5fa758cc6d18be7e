"""Execute one run: claim it, train with a database sink, finalize. Called by the task."""

from __future__ import annotations

import logging
import time

from sqlalchemy import select, update

from backend.db.base import utcnow
from backend.db.models import Run
from backend.db.session import session_scope
from unisd_core.config import RunConfig
from workers.sinks import DbMetricSink

log = logging.getLogger(__name__)
CANCEL_POLL_S = 0.5


def claim(database_url: str, run_id: int, worker: str) -> RunConfig | None:
    """Atomically move a queued run to running; None if another delivery got it first.

    The conditional UPDATE is the lock: of two workers racing on one run, one sees rowcount 1.
    """
    with session_scope(database_url) as session:
        result = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == "queued", Run.cancel_requested.is_(False))
            .values(
                status="running",
                worker=worker,
                attempt=Run.attempt + 1,
                started_at=utcnow(),
                heartbeat_at=utcnow(),
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        config = session.scalar(select(Run.config).where(Run.id == run_id))
    return RunConfig.model_validate(config)


class CancelFlag:
    """The trainer's stop signal: the run's `cancel_requested`, read at most every 0.5 s."""

    def __init__(self, database_url: str, run_id: int) -> None:
        self.database_url = database_url
        self.run_id = run_id
        self._last_check = 0.0
        self._cancelled = False

    def __call__(self) -> bool:
        if not self._cancelled and time.monotonic() - self._last_check >= CANCEL_POLL_S:
            self._last_check = time.monotonic()
            with session_scope(self.database_url) as session:
                flag = session.scalar(select(Run.cancel_requested).where(Run.id == self.run_id))
            self._cancelled = bool(flag)
        return self._cancelled


def finalize(database_url: str, run_id: int, status: str, error: str | None = None) -> None:
    with session_scope(database_url) as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(status=status, error=error, finished_at=utcnow(), heartbeat_at=utcnow())
        )


def execute(run_id: int, database_url: str, *, worker: str) -> str:
    """Run `run_id` to completion; returns the final status ('skipped' if not claimable)."""
    config = claim(database_url, run_id, worker)
    if config is None:
        log.info("run %s is not queued (claimed elsewhere, cancelled or gone): skipping", run_id)
        return "skipped"
    from unisd_core.trainer import train  # torch loads only in the worker, only when needed

    sink = DbMetricSink(database_url, run_id, config.train.max_steps)
    try:
        result = train(config, sink, CancelFlag(database_url, run_id))
    except Exception as exc:
        log.exception("run %s failed", run_id)
        sink.flush()
        finalize(database_url, run_id, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        return "failed"
    sink.flush()
    status = "cancelled" if result.stopped_early else "succeeded"
    finalize(database_url, run_id, status)
    return status
