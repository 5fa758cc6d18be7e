"""The Celery application and its one settings dict."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from kombu import Exchange, Queue

from backend.db.session import engine_for
from backend.settings import QUEUES, Settings, get_settings

# Runs take hours: the broker must not hand a task to a second worker while the first still
# holds it. Late acks + a long visibility timeout + the database claim give one execution; a
# worker that dies holding a message is handled by the reaper, not by this timeout.
VISIBILITY_TIMEOUT_S = 7 * 24 * 3600


def create_celery(settings: Settings) -> Celery:
    app = Celery("unisd", broker=settings.resolved_broker_url, include=["workers.tasks"])
    app.conf.update(
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
        task_default_queue=settings.default_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
    )
    return app


@worker_process_init.connect
def _fresh_database_connections(**_: Any) -> None:
    # A pool process is forked from the worker's main process: it must not reuse the parent's
    # pooled database sockets (close=False leaves them open for the parent).
    engine_for(get_settings().resolved_database_url).dispose(close=False)


celery_app = create_celery(get_settings())
