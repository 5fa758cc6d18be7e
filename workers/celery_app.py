"""The Celery application and its one settings dict."""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from backend.settings import QUEUES, Settings, get_settings

# Runs take hours: the broker must not hand a task to a second worker while the first still
# holds it. Late acks + a long visibility timeout + the database claim give one execution.
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
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
    )
    return app


celery_app = create_celery(get_settings())
