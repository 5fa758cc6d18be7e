"""The runner against a real SQLite database and the real trainer on the tiny model."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select, update

from backend.db.models import MetricPoint, Run
from backend.db.session import session_scope
from backend.runs.service import create_run
from unisd_core.config import RunConfig
from workers.runner import execute


def new_run(url: str, **raw: object) -> int:
    with session_scope(url) as session:
        return create_run(session, RunConfig.model_validate(raw), queue="cpu").id


def get(url: str, run_id: int) -> Run:
    with session_scope(url) as session:
        run = session.get(Run, run_id)
        assert run is not None
        session.expunge(run)
        return run


def points(url: str, run_id: int) -> list[tuple[str, int]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(MetricPoint.key, MetricPoint.step).where(MetricPoint.run_id == run_id)
        )
        return sorted((key, step) for key, step in rows)


def test_run_it_twice_executes_once(sqlite_url: str) -> None:
    run_id = new_run(sqlite_url, train={"max_steps": 3, "batch_size": 2})
    assert execute(run_id, sqlite_url, worker="w1") == "succeeded"
    assert execute(run_id, sqlite_url, worker="w2") == "skipped"
    run = get(sqlite_url, run_id)
    assert (run.status, run.worker, run.attempt, run.step, run.progress) == (
        "succeeded",
        "w1",
        1,
        3,
        1.0,
    )
    assert run.started_at and run.finished_at and run.finished_at >= run.started_at
    recorded = points(sqlite_url, run_id)
    assert len(recorded) == len(set(recorded)) == 3 * 4
    assert {step for key, step in recorded if key == "loss/total"} == {1, 2, 3}


def test_a_cancelled_queued_run_never_starts(sqlite_url: str) -> None:
    run_id = new_run(sqlite_url)
    with session_scope(sqlite_url) as session:
        session.execute(
            update(Run).where(Run.id == run_id).values(status="cancelled", cancel_requested=True)
        )
    assert execute(run_id, sqlite_url, worker="w") == "skipped"
    assert get(sqlite_url, run_id).started_at is None
    assert points(sqlite_url, run_id) == []


def test_a_missing_model_fails_with_a_reason(sqlite_url: str) -> None:
    run_id = new_run(sqlite_url, model={"name_or_path": "/nonexistent/model-dir"})
    assert execute(run_id, sqlite_url, worker="w") == "failed"
    run = get(sqlite_url, run_id)
    assert run.status == "failed"
    assert run.error and "/nonexistent/model-dir" in run.error


def test_cancel_while_running_stops_at_a_step_boundary(sqlite_url: str) -> None:
    run_id = new_run(sqlite_url, train={"max_steps": 500, "batch_size": 1})

    def cancel_once_started() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and get(sqlite_url, run_id).step < 1:
            time.sleep(0.05)
        with session_scope(sqlite_url) as session:
            session.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))

    canceller = threading.Thread(target=cancel_once_started)
    canceller.start()
    assert execute(run_id, sqlite_url, worker="w") == "cancelled"
    canceller.join()
    run = get(sqlite_url, run_id)
    assert run.status == "cancelled" and 1 <= run.step < 500
    with session_scope(sqlite_url) as session:
        stored = session.scalar(
            select(func.max(MetricPoint.step)).where(MetricPoint.run_id == run_id)
        )
    assert stored == run.step  # every step reported before the stop reached the database
