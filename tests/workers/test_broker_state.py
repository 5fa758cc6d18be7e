"""Reading which runs wait in a real Redis broker (what the reaper uses to find lost ones)."""

from __future__ import annotations

import pytest

from backend.queue import send_train_run
from backend.settings import Settings
from workers.broker_state import queued_run_ids


@pytest.mark.redis
def test_runs_waiting_in_redis_are_seen(redis_broker_url: str) -> None:
    settings = Settings(broker_url=redis_broker_url)
    assert queued_run_ids(redis_broker_url) == set()
    assert send_train_run(settings, 11, "cpu") and send_train_run(settings, 12, "gpu-x2")
    assert queued_run_ids(redis_broker_url) == {11, 12}


def test_an_unreadable_broker_is_unknown_not_empty() -> None:
    assert queued_run_ids("redis://127.0.0.1:1/0") is None
    assert queued_run_ids("memory://") is None
