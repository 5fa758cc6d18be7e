"""Sending tasks to the workers. Task names only: the API never imports the workers' code."""

from __future__ import annotations

import logging
from functools import lru_cache

from celery import Celery

from backend.settings import Settings

TRAIN_RUN_TASK = "unisd.train_run"

log = logging.getLogger(__name__)


@lru_cache
def _client(broker_url: str) -> Celery:
    return Celery("unisd-client", broker=broker_url)


def send_train_run(settings: Settings, run_id: int, queue: str) -> bool:
    """Queue a run (call after the run row is committed). False if the broker is unreachable.

    The database is the source of truth: a run left `queued` by a failed send is still there to
    be re-sent once the broker is back.
    """
    try:
        _client(settings.resolved_broker_url).send_task(
            TRAIN_RUN_TASK,
            args=[run_id],
            queue=queue,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        )
    except Exception:  # the broker's client raises many types; the run stays queued in SQL
        log.exception("could not send run %s to queue %s", run_id, queue)
        return False
    return True
