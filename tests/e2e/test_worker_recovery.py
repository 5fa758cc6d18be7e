"""Crash recovery with real processes: a worker SIGKILLed mid-run, a broker that lost its data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Stack
from tests.workers.processes import (
    OwnRedis,
    database_url,
    env_for,
    events,
    kill_tree,
    start_worker,
    start_workers,
    steps,
    submit,
    wait_until,
    worker_pid,
)
from workers.broker_state import queued_run_ids

FINISHED = {"succeeded", "failed", "cancelled"}
#: Heartbeats come every 2 s; the test's reaper calls a run lost after 6 s of silence.
REAPER = ["reap", "--loop", "--every", "1", "--stale-after", "6", "--resend-after", "3"]


@pytest.mark.slow
@pytest.mark.redis
def test_a_killed_workers_run_resumes_elsewhere(stack: Stack, redis_broker_url: str) -> None:
    env = env_for(stack, UNISD_BROKER_URL=redis_broker_url)
    base_url = stack.serve(env, "--no-reaper")
    stack.start(REAPER, env, "reaper")
    start_workers(stack, env, ["worker-1", "worker-2"], "--queues", "cpu", "--no-reap")
    url = database_url(stack)

    run_id = submit(base_url, train={"max_steps": 24, "batch_size": 1, "checkpoint_every": 3})
    first = wait_until(url, run_id, lambda r: r.status == "running" and r.step >= 4, "step 4")
    kill_tree(worker_pid(first))  # the worker, its pool process, everything: a lost machine

    done = wait_until(url, run_id, lambda r: r.status in FINISHED, "finished", timeout_s=240)
    assert done.status == "succeeded", done.error
    assert done.attempt == 2 and done.worker != first.worker
    # Neither lost nor duplicated: one point per step, 1..24, across the two attempts.
    assert steps(url, run_id) == list(range(1, 25))
    log = "\n".join(events(url, run_id))
    assert f"attempt 1 lost its worker {first.worker}" in log and "re-queued" in log
    assert "attempt 2/3 started" in log and "resuming from the last checkpoint" in log


@pytest.mark.slow
def test_runs_queued_before_the_broker_lost_its_data_still_run(
    stack: Stack, tmp_path: Path
) -> None:
    redis = OwnRedis(tmp_path / "redis")
    redis.start()
    try:
        env = env_for(stack, UNISD_BROKER_URL=redis.url)
        base_url = stack.serve(env, "--no-reaper")
        url = database_url(stack)
        ids = [submit(base_url, train={"max_steps": 2, "batch_size": 1}) for _ in range(3)]
        assert queued_run_ids(redis.url) == set(ids)
        # The broker restarts without its data (no persistence): the messages are gone.
        redis.stop()
        redis.start()
        assert queued_run_ids(redis.url) == set()
        stack.start(REAPER, env, "reaper")
        start_worker(stack, env, "worker", "--queues", "cpu", "--no-reap")
        runs = [wait_until(url, i, lambda r: r.status in FINISHED, "finished") for i in ids]
        assert [(r.status, r.attempt) for r in runs] == [("succeeded", 1)] * 3
    finally:
        stack.stop()  # workers first, then the broker they talk to
        redis.stop()
