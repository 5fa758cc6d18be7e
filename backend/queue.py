"""Sending tasks to the workers. Task names only: the API never imports the workers' code."""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from celery import Celery

from backend.settings import QUEUES, Settings
from unisd_core.config import RunConfig

TRAIN_RUN_TASK = "unisd.train_run"

log = logging.getLogger(__name__)

#: Runs that need N > 1 GPUs wait in `gpu-xN`, consumed only by workers that own N GPUs.
_MULTI_GPU_QUEUE = re.compile(r"gpu-x([2-9]|[1-5][0-9]|6[0-4])")


def multi_gpu_queue(gpus: int) -> str:
    return f"gpu-x{gpus}"


def is_known_queue(name: str) -> bool:
    return name in QUEUES or _MULTI_GPU_QUEUE.fullmatch(name) is not None


def gpus_of_queue(name: str) -> int:
    """GPUs a run on queue `name` needs: 0 for cpu, 1 for gpu, N for gpu-xN."""
    if name == "cpu":
        return 0
    match = _MULTI_GPU_QUEUE.fullmatch(name)
    return int(match.group(1)) if match else 1


def queue_for(config: RunConfig, default: str) -> str:
    """The queue of a run's resource class: from `resources` (device, gpus), else `default`."""
    resources = config.resources
    if resources.gpus > 1:
        return multi_gpu_queue(resources.gpus)
    if resources.device == "cpu":
        return "cpu"
    if resources.device == "cuda":
        return "gpu"
    return default


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
