"""Which runs the broker still holds, read straight from Redis (the transport we deploy on).

The reaper re-sends a queued run only when its message is gone (a broker that restarted without
its data, a send that failed). Reading the queue lists tells "waiting in the broker" apart from
"lost", so a long queue of runs waiting for GPUs is not flooded with duplicates.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import redis

from backend.queue import TRAIN_RUN_TASK


def redis_client(broker_url: str) -> redis.Redis | None:
    """A client for Celery's Redis broker URL (`redis://`, `rediss://`, `redis+socket://`)."""
    if broker_url.startswith("redis+socket://"):
        return redis.Redis(unix_socket_path=broker_url.removeprefix("redis+socket://"))
    if broker_url.startswith(("redis://", "rediss://")):
        return redis.Redis.from_url(broker_url)
    return None


def _run_id(raw: bytes | str) -> int | None:
    try:
        message = json.loads(raw)
        if message.get("headers", {}).get("task") != TRAIN_RUN_TASK:
            return None
        body: Any = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return int(args[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def queued_run_ids(broker_url: str) -> set[int] | None:
    """Run ids waiting in any queue list; None when the broker cannot be read this way."""
    client = redis_client(broker_url)
    if client is None:
        return None
    found: set[int] = set()
    try:
        for key in client.scan_iter(count=500):
            if client.type(key) != b"list":
                continue
            for raw in client.lrange(key, 0, -1):
                run_id = _run_id(raw)
                if run_id is not None:
                    found.add(run_id)
    except redis.RedisError:
        return None
    finally:
        client.close()
    return found
