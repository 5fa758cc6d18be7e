"""The embedded default (`unisd serve` alone: SQLite, embedded broker, supervised worker and
reaper) survives what the production setup survives: bad configs, cancels, a wedged run, a
killed worker."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from backend.db.models import Artifact
from backend.db.session import session_scope
from tests.support import Stack
from tests.workers.processes import (
    database_url,
    env_for,
    events,
    kill_tree,
    row,
    steps,
    submit,
    wait_until,
    worker_pid,
)

FINISHED = {"succeeded", "failed", "cancelled"}
LONG = {"max_steps": 2000, "batch_size": 1}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("embedded"))
    try:
        stack.serve(env_for(stack), "--stale-after", "6")
        yield stack
    finally:
        stack.stop()


def artifacts(url: str, run_id: int) -> set[tuple[str, str]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(Artifact.kind, Artifact.name).where(Artifact.run_id == run_id)
        ).all()
    return {(kind, name) for kind, name in rows}


def test_a_failing_config_fails_with_a_reason_and_is_not_retried(embedded: Stack) -> None:
    url = database_url(embedded)
    run_id = submit(embedded.base_url, model={"name_or_path": "/no/such/model"})
    run = wait_until(url, run_id, lambda r: r.status in FINISHED, "finished")
    assert run.status == "failed" and run.error and "/no/such/model" in run.error
    assert "\n" not in run.error
    time.sleep(3)  # a retry would have been claimed by now
    assert row(url, run_id).attempt == 1
    assert ("traceback", "traceback-attempt-1.txt") in artifacts(url, run_id)
    trace = embedded.data_dir / "runs" / str(run_id) / "traceback-attempt-1.txt"
    assert "ModelLoadError" in trace.read_text()
    body = httpx.get(f"{embedded.base_url}/api/v1/runs/{run_id}/events", timeout=10).json()
    assert any("failed: " in event["message"] for event in body["items"]), body


def test_cancel_while_running_stops_within_seconds_with_a_checkpoint(embedded: Stack) -> None:
    url = database_url(embedded)
    run_id = submit(embedded.base_url, train=LONG)
    wait_until(url, run_id, lambda r: r.status == "running" and r.step >= 2, "step 2")
    asked = time.monotonic()
    httpx.post(f"{embedded.base_url}/api/v1/runs/{run_id}/cancel", timeout=10).raise_for_status()
    run = wait_until(url, run_id, lambda r: r.status in FINISHED, "finished", timeout_s=30)
    waited = time.monotonic() - asked
    assert run.status == "cancelled" and run.step < LONG["max_steps"], (run.status, waited)
    assert any(kind == "checkpoint" for kind, _ in artifacts(url, run_id))
    assert steps(url, run_id) == list(range(1, run.step + 1))


def test_a_wedged_run_is_force_terminated(embedded: Stack) -> None:
    url = database_url(embedded)
    run_id = submit(embedded.base_url, train=LONG)
    wait_until(url, run_id, lambda r: r.status == "running" and r.step >= 1, "step 1")
    done = subprocess.run(
        [sys.executable, "-m", "unisd_core.cli", "terminate", str(run_id)],
        env=env_for(embedded),
        cwd=embedded.data_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and f"run {run_id}: cancelled" in done.stdout, done.stderr
    run = row(url, run_id)
    assert run.status == "cancelled" and run.error == "force-terminated by an operator"
    # The pool process was killed; its steps stop coming, and the worker takes the next run.
    time.sleep(3)
    assert row(url, run_id).step <= run.step + 1  # at most the step in flight was recorded
    after = submit(embedded.base_url, train={"max_steps": 2, "batch_size": 1})
    assert wait_until(url, after, lambda r: r.status in FINISHED, "finished").status == "succeeded"


def test_a_killed_local_worker_is_restarted_and_its_run_resumes(embedded: Stack) -> None:
    url = database_url(embedded)
    run_id = submit(
        embedded.base_url, train={"max_steps": 30, "batch_size": 1, "checkpoint_every": 3}
    )
    first = wait_until(url, run_id, lambda r: r.status == "running" and r.step >= 5, "step 5")
    kill_tree(worker_pid(first))
    run = wait_until(url, run_id, lambda r: r.status in FINISHED, "finished", timeout_s=240)
    assert run.status == "succeeded", run.error
    assert run.attempt == 2 and run.worker != first.worker  # the supervisor's new worker
    assert steps(url, run_id) == list(range(1, 31))
    assert "resuming from the last checkpoint" in "\n".join(events(url, run_id))
    assert "local worker exited" in (embedded.data_dir / "serve.log").read_text()
