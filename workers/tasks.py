"""Celery tasks: thin wrappers that take ids and delegate to the runner."""

from __future__ import annotations

import socket

from backend.queue import TRAIN_RUN_TASK
from backend.settings import get_settings
from workers import runner
from workers.celery_app import celery_app


@celery_app.task(name=TRAIN_RUN_TASK)
def train_run(run_id: int) -> str:
    """Execute run `run_id` once; a duplicate delivery finds it claimed and does nothing."""
    return runner.execute(run_id, get_settings().resolved_database_url, worker=socket.gethostname())
