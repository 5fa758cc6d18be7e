"""Crash recovery: runs whose worker died, and queued runs whose message the broker lost.

A worker that dies (SIGKILL, lost machine) stops heartbeating. Its Celery message stays unacked
until the visibility timeout (days), so waiting for the broker is no option: the reaper moves such
runs back to `queued` (the next attempt resumes from the last checkpoint) and sends them again,
or fails them once they have used `max_attempts`. It also re-sends queued runs that no broker
queue holds any more. Every change is a conditional UPDATE, so any number of reapers (one per
worker, one in `unisd serve`) can run at once without doing anything twice.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from backend.db.base import utcnow
from backend.db.models import Run
from backend.db.repositories import append_run_event
from backend.db.session import session_scope
from workers.liveness import REAP_EVERY_S, RESEND_AFTER_S, STALE_AFTER_S

log = logging.getLogger(__name__)


#: Sends a run's task: (run_id, queue) -> whether the broker took it.
Send = Callable[[int, str], bool]


@dataclass
class ReapReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.requeued or self.failed or self.cancelled or self.resent)


def _lost_reason(worker: str | None, heartbeat_at: datetime | None, attempt: int) -> str:
    seen = heartbeat_at.isoformat(timespec="seconds") if heartbeat_at else "never"
    return f"attempt {attempt} lost its worker {worker or '?'} (last heartbeat {seen})"


def reap_stale(
    database_url: str, *, stale_after_s: float = STALE_AFTER_S, now: datetime | None = None
) -> tuple[ReapReport, list[tuple[int, str]]]:
    """Settle runs whose heartbeat stopped; returns the report and the (run, queue) to send."""
    now = now or utcnow()
    threshold = now - timedelta(seconds=stale_after_s)
    report = ReapReport()
    to_send: list[tuple[int, str]] = []
    with session_scope(database_url) as session:
        stale = session.execute(
            select(
                Run.id,
                Run.attempt,
                Run.max_attempts,
                Run.cancel_requested,
                Run.worker,
                Run.heartbeat_at,
                Run.queue,
            ).where(Run.status == "running", Run.heartbeat_at < threshold)
        ).all()
    for row in stale:
        reason = _lost_reason(row.worker, row.heartbeat_at, row.attempt)
        if row.cancel_requested:
            values: dict[str, object] = {
                "status": "cancelled",
                "finished_at": now,
                "error": f"cancelled; {reason}",
            }
            bucket = report.cancelled
        elif row.attempt >= row.max_attempts:
            values = {
                "status": "failed",
                "finished_at": now,
                "error": f"gave up after {row.attempt} attempts: {reason}",
            }
            bucket = report.failed
        else:
            values = {"status": "queued", "worker": None, "task_id": None, "queued_at": now}
            bucket = report.requeued
        with session_scope(database_url) as session:
            # Fenced on the attempt and the stale heartbeat: a worker that just came back, or
            # another reaper that got here first, makes this match nothing.
            result = session.execute(
                update(Run)
                .where(
                    Run.id == row.id,
                    Run.status == "running",
                    Run.attempt == row.attempt,
                    Run.heartbeat_at < threshold,
                )
                .values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue
            action = {"queued": "re-queued", "failed": "failed", "cancelled": "cancelled"}
            append_run_event(
                session,
                row.id,
                "warning" if values["status"] == "queued" else "error",
                f"{reason}; {action[str(values['status'])]}",
            )
        bucket.append(row.id)
        if values["status"] == "queued":
            to_send.append((row.id, row.queue))
    return report, to_send


def missing_from_broker(
    database_url: str,
    present: set[int] | None,
    *,
    resend_after_s: float = RESEND_AFTER_S,
    now: datetime | None = None,
) -> list[tuple[int, str]]:
    """Queued runs due for a (re)send: waiting longer than `resend_after_s`, not in the broker.

    `present` is what the broker's queues hold (None: unknown, then age alone decides). Each pick
    moves `queued_at` to now, so a run is re-sent at most once per `resend_after_s`.
    """
    now = now or utcnow()
    threshold = now - timedelta(seconds=resend_after_s)
    picked: list[tuple[int, str]] = []
    with session_scope(database_url) as session:
        rows = session.execute(
            select(Run.id, Run.queue).where(
                Run.status == "queued",
                Run.cancel_requested.is_(False),
                func.coalesce(Run.queued_at, Run.created_at) < threshold,
            )
        ).all()
        for run_id, queue in rows:
            if present is not None and run_id in present:
                continue
            result = session.execute(
                update(Run)
                .where(
                    Run.id == run_id,
                    Run.status == "queued",
                    func.coalesce(Run.queued_at, Run.created_at) < threshold,
                )
                .values(queued_at=now)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                picked.append((run_id, queue))
    return picked


def reap_once(
    database_url: str,
    send: Send,
    present: Callable[[], set[int] | None],
    *,
    stale_after_s: float = STALE_AFTER_S,
    resend_after_s: float = RESEND_AFTER_S,
) -> ReapReport:
    report, to_send = reap_stale(database_url, stale_after_s=stale_after_s)
    for run_id, queue in to_send:
        send(run_id, queue)  # a failed send leaves the run queued: the next pass re-sends it
    for run_id, queue in missing_from_broker(
        database_url, present(), resend_after_s=resend_after_s
    ):
        if send(run_id, queue):
            report.resent.append(run_id)
    if report:
        log.warning("reaper: %s", report)
    return report


def run_forever(
    step: Callable[[], object], *, every_s: float = REAP_EVERY_S, parent_pid: int | None = None
) -> None:
    """Call `step` every `every_s` seconds; return when `parent_pid` is gone (orphaned reaper)."""
    while parent_pid is None or os.getppid() == parent_pid:
        try:
            step()
        except Exception:  # database or broker down: try again next time
            log.warning("reaper pass failed", exc_info=True)
        time.sleep(every_s)
