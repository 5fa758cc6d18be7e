"""Cancelling runs: the polled flag for processes without a heartbeat, and force-terminate.

Normal cancels are cooperative (the API sets `cancel_requested`; the heartbeat relays it; the
trainer stops at a step boundary and checkpoints). `force_cancel` is for a wedged worker: it
marks the run cancelled and asks Celery to SIGKILL the pool process executing the task.
"""

from __future__ import annotations

import time

from celery import Celery
from sqlalchemy import select, update

from backend.db.base import utcnow
from backend.db.models import Run
from backend.db.session import session_scope

CANCEL_POLL_S = 0.5


class CancelFlag:
    """A stop signal reading `cancel_requested` at most every 0.5 s (multi-GPU ranks use it)."""

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


def force_cancel(database_url: str, run_id: int, app: Celery) -> str:
    """Cancel `run_id` now, killing its task if it runs; returns the run's status afterwards."""
    with session_scope(database_url) as session:
        run = session.execute(select(Run.status, Run.task_id).where(Run.id == run_id)).one_or_none()
        if run is None:
            raise LookupError(f"run {run_id} does not exist")
        if run.status in ("queued", "running"):
            session.execute(
                update(Run)
                .where(Run.id == run_id, Run.status.in_(("queued", "running")))
                .values(
                    status="cancelled",
                    cancel_requested=True,
                    finished_at=utcnow(),
                    error="force-terminated by an operator",
                )
            )
    if run.status == "running" and run.task_id:
        # The worker's main process kills the pool child, however stuck the child is. With
        # reject-on-worker-lost the message may come back; the run is cancelled, so it is a no-op.
        app.control.revoke(run.task_id, terminate=True, signal="SIGKILL")
    with session_scope(database_url) as session:
        return str(session.scalar(select(Run.status).where(Run.id == run_id)))
