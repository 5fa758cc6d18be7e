"""Celery tasks: thin wrappers that take ids and delegate to the runner."""

from __future__ import annotations

from typing import Any

from backend.queue import TRAIN_RUN_TASK
from backend.settings import get_settings
from workers import runner
from workers.celery_app import celery_app


def requeue(run_id: int, queue: str, countdown: float) -> None:
    """Send the run again after a transient failure (the reaper covers a failed send)."""
    try:
        celery_app.send_task(TRAIN_RUN_TASK, args=[run_id], queue=queue, countdown=countdown)
    except Exception:  # the broker itself may be what failed; the run is queued in SQL
        runner.log.warning("could not re-send run %s; the reaper will", run_id, exc_info=True)


@celery_app.task(name=TRAIN_RUN_TASK, bind=True)
def train_run(self: Any, run_id: int) -> str:
    """Execute run `run_id` once; a duplicate delivery finds it claimed and does nothing."""
    settings = get_settings()
    return runner.execute(
        run_id,
        settings.resolved_database_url,
        worker=self.request.hostname or "worker",
        runs_dir=settings.data_dir.resolve() / "runs",
        task_id=self.request.id,
        requeue=requeue,
        terminate_when_wedged=True,
    )
