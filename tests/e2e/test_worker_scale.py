"""Two real workers on real Redis share ten runs: each runs exactly once, duplicates included."""

from __future__ import annotations

import httpx
import pytest

from backend.queue import send_train_run
from backend.settings import Settings
from tests.support import Stack
from tests.workers.processes import (
    database_url,
    env_for,
    row,
    start_workers,
    steps,
    submit,
    wait_until,
)

FINISHED = {"succeeded", "failed", "cancelled"}


@pytest.mark.slow
@pytest.mark.redis
def test_two_workers_ten_runs_each_once(stack: Stack, redis_broker_url: str) -> None:
    env = env_for(stack, UNISD_BROKER_URL=redis_broker_url)
    base_url = stack.serve(env, "--no-reaper")
    url = database_url(stack)

    ids = [submit(base_url, train={"max_steps": 2, "batch_size": 1}) for _ in range(10)]
    # Duplicate delivery: every task is in the queue twice.
    settings = Settings(broker_url=redis_broker_url, data_dir=stack.data_dir)
    assert all(send_train_run(settings, run_id, "cpu") for run_id in ids)
    # Cancel while queued: no worker runs yet, so it cannot have started (its task, sent twice,
    # is still in the broker and must be a no-op when a worker gets it).
    doomed = submit(base_url, train={"max_steps": 2, "batch_size": 1})
    assert send_train_run(settings, doomed, "cpu")
    cancelled = httpx.post(f"{base_url}/api/v1/runs/{doomed}/cancel", timeout=10).json()
    assert cancelled["status"] == "cancelled", cancelled
    start_workers(stack, env, ["worker-1", "worker-2"], "--queues", "cpu", "--no-reap")

    runs = [wait_until(url, i, lambda r: r.status in FINISHED, "finished") for i in ids]
    assert [r.status for r in runs] == ["succeeded"] * 10, [(r.id, r.error) for r in runs]
    assert [r.attempt for r in runs] == [1] * 10  # the duplicates were no-ops
    assert len({r.worker for r in runs}) == 2  # both workers took part
    assert all(steps(url, i) == [1, 2] for i in ids)
    # Every run records where and with what it ran.
    assert all(r.env and r.env["hostname"] and r.env["versions"].get("torch") for r in runs)
    # Both duplicates of the cancelled run were consumed by now; it never started.
    late = row(url, doomed)
    assert (late.status, late.started_at, late.attempt) == ("cancelled", None, 0)
    assert steps(url, doomed) == []
