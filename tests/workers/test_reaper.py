"""The reaper on a real database: lost workers, exhausted attempts, runs the broker lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from backend.db.base import utcnow
from backend.db.models import Run, RunEvent
from backend.db.session import session_scope
from backend.runs.service import create_run
from unisd_core.config import RunConfig
from workers import reaper


def new_run(url: str, **values: Any) -> int:
    with session_scope(url) as session:
        run = create_run(session, RunConfig.model_validate({"preset": "sft"}), default_queue="cpu")
        for key, value in values.items():
            setattr(run, key, value)
        return run.id


def get(url: str, run_id: int) -> Run:
    with session_scope(url) as session:
        run = session.get(Run, run_id)
        assert run is not None
        session.expunge(run)
        return run


def running(url: str, *, silent_for_s: float, attempt: int = 1, **values: Any) -> int:
    beat = utcnow() - timedelta(seconds=silent_for_s)
    return new_run(url, status="running", attempt=attempt, worker="w1", heartbeat_at=beat, **values)


class Sender:
    def __init__(self, ok: bool = True) -> None:
        self.sent: list[tuple[int, str]] = []
        self.ok = ok

    def __call__(self, run_id: int, queue: str) -> bool:
        self.sent.append((run_id, queue))
        return self.ok


def reap(url: str, send: Sender, present: set[int] | None = None) -> reaper.ReapReport:
    return reaper.reap_once(url, send, lambda: present, stale_after_s=30, resend_after_s=30)


def test_a_run_whose_worker_died_is_requeued_once(sqlite_url: str) -> None:
    dead = running(sqlite_url, silent_for_s=120, task_id="t-1")
    alive = running(sqlite_url, silent_for_s=2)
    send = Sender()
    report = reap(sqlite_url, send)
    assert report.requeued == [dead] and send.sent == [(dead, "cpu")]
    run = get(sqlite_url, dead)
    assert (run.status, run.worker, run.task_id, run.attempt) == ("queued", None, None, 1)
    assert get(sqlite_url, alive).status == "running"
    # Run it twice: the second pass (or a second reaper) finds nothing left to do.
    assert not reap(sqlite_url, send) and send.sent == [(dead, "cpu")]
    with session_scope(sqlite_url) as session:
        log = list(session.scalars(select(RunEvent.message).where(RunEvent.run_id == dead)))
    assert log == [
        f"attempt 1 lost its worker w1 (last heartbeat {run.heartbeat_at.isoformat(timespec='seconds')}); re-queued"  # noqa: E501
    ]


def test_after_max_attempts_the_run_fails_with_the_reason(sqlite_url: str) -> None:
    run_id = running(sqlite_url, silent_for_s=120, attempt=3, max_attempts=3)
    send = Sender()
    assert reap(sqlite_url, send).failed == [run_id] and send.sent == []
    run = get(sqlite_url, run_id)
    assert run.status == "failed" and run.finished_at is not None
    assert run.error and run.error.startswith("gave up after 3 attempts: attempt 3 lost its worker")


def test_a_lost_run_that_was_being_cancelled_ends_cancelled(sqlite_url: str) -> None:
    run_id = running(sqlite_url, silent_for_s=120, cancel_requested=True)
    send = Sender()
    assert reap(sqlite_url, send).cancelled == [run_id] and send.sent == []
    assert get(sqlite_url, run_id).status == "cancelled"


def test_queued_runs_missing_from_the_broker_are_resent(sqlite_url: str) -> None:
    old = utcnow() - timedelta(seconds=120)
    in_broker = new_run(sqlite_url, queued_at=old)
    lost = new_run(sqlite_url, queued_at=old)
    fresh = new_run(sqlite_url)  # just created: its message may still be on its way
    backing_off = new_run(sqlite_url, queued_at=utcnow() + timedelta(seconds=60))
    cancelled = new_run(sqlite_url, queued_at=old, status="cancelled", cancel_requested=True)
    send = Sender()
    report = reap(sqlite_url, send, present={in_broker})
    assert report.resent == [lost] and send.sent == [(lost, "cpu")]
    # Re-sent at most once per window, even while the broker still lacks it.
    assert not reap(sqlite_url, send, present={in_broker})
    assert {fresh, backing_off, cancelled}.isdisjoint(run for run, _ in send.sent)


def test_when_the_broker_cannot_be_read_age_alone_decides(sqlite_url: str) -> None:
    old = utcnow() - timedelta(seconds=120)
    a, b = new_run(sqlite_url, queued_at=old), new_run(sqlite_url)
    send = Sender()
    assert reap(sqlite_url, send, present=None).resent == [a]
    assert b not in [run for run, _ in send.sent]


def test_a_failed_send_is_retried_on_a_later_pass(sqlite_url: str) -> None:
    run_id = running(sqlite_url, silent_for_s=120)
    down = Sender(ok=False)
    reap(sqlite_url, down)
    assert get(sqlite_url, run_id).status == "queued"
    # Later the broker is back and the window has passed.
    with session_scope(sqlite_url) as session:
        session.execute(
            update(Run).where(Run.id == run_id).values(queued_at=utcnow() - timedelta(minutes=5))
        )
    up = Sender()
    assert reap(sqlite_url, up).resent == [run_id]
