"""Where a running trainer's numbers go: batched, idempotent writes to SQL, plus progress.

Points are buffered and written in one short transaction per flush (never a transaction open
during a step). Each flush also records progress on the run row: step/total, tokens/s and an ETA.

Exactly-once across attempts: points are unique on (run, key, step) and the insert ignores
replays, so an attempt resumed from a checkpoint may re-report steps the previous attempt had
already written. The sink flushes synchronously on every checkpoint step (the trainer saves right
after reporting it), so no checkpoint ever gets ahead of the stored points: nothing is lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import update

from backend.db.base import utcnow
from backend.db.models import Run
from backend.db.repositories import insert_metric_points
from backend.db.session import session_scope

FLUSH_EVERY_POINTS = 500
FLUSH_EVERY_S = 1.0
#: Smoothing of the step time behind the ETA (higher: follows recent steps more closely).
STEP_TIME_SMOOTHING = 0.3


class DbMetricSink:
    """Buffers points and flushes them with the run's progress.

    `attempt`, when given, fences the progress update: a stale attempt cannot move the row.
    With `background=True` the training thread only buffers; another thread (the heartbeat)
    calls `flush_if_due()`, so a step never waits on the database, except on the steps after
    which the trainer writes a checkpoint (every `checkpoint_every`, and the last), where the
    flush is synchronous.
    """

    def __init__(
        self,
        database_url: str,
        run_id: int,
        total_steps: int,
        *,
        attempt: int | None = None,
        checkpoint_every: int = 0,
        background: bool = False,
    ) -> None:
        self.database_url = database_url
        self.run_id = run_id
        self.total_steps = max(total_steps, 1)
        self.attempt = attempt
        self.checkpoint_every = checkpoint_every
        self.background = background
        self._buffer: list[dict[str, object]] = []
        self._last_step = 0
        self._tokens_per_s: float | None = None
        self._step_s: float | None = None
        self._last_flush = time.monotonic()
        self._flushed_step = 0
        self._lock = threading.Lock()  # one flush at a time; the buffer swap is atomic with it

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        now = time.time()
        rows = [
            {
                "run_id": self.run_id,
                "key": key,
                "step": step,
                "value": float(value),
                "wall_time": now,
            }
            for key, value in metrics.items()
        ]
        with self._lock:
            self._buffer.extend(rows)
            self._last_step = max(self._last_step, step)
            if "train/total_steps" in metrics:  # the trainer's count (epoch-based runs)
                self.total_steps = max(int(metrics["train/total_steps"]), 1)
            if "sys/tokens_per_s" in metrics:
                self._tokens_per_s = float(metrics["sys/tokens_per_s"])
            if "sys/step_s" in metrics:
                step_s = float(metrics["sys/step_s"])
                previous = self._step_s
                self._step_s = (
                    step_s
                    if previous is None
                    else STEP_TIME_SMOOTHING * step_s + (1 - STEP_TIME_SMOOTHING) * previous
                )
            full = len(self._buffer) >= FLUSH_EVERY_POINTS
        checkpoint_next = self.checkpoint_every > 0 and step % self.checkpoint_every == 0
        if checkpoint_next or step >= self.total_steps or full:
            self.flush()
        elif not self.background:
            self.flush_if_due()

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def progress_values(self) -> dict[str, object]:
        values: dict[str, object] = {
            "step": self._last_step,
            "progress": min(self._last_step / self.total_steps, 1.0),
            "heartbeat_at": utcnow(),
        }
        if self._tokens_per_s is not None:
            values["tokens_per_s"] = self._tokens_per_s
        if self._step_s is not None:
            remaining = max(self.total_steps - self._last_step, 0) * self._step_s
            values["eta_at"] = utcnow() + timedelta(seconds=remaining)
        return values

    def flush(self) -> None:
        with self._lock:
            if not self._buffer and self._last_step == self._flushed_step:
                return  # nothing new since the last flush: no transaction at all
            rows, self._buffer = self._buffer, []
            progress = self.progress_values() if self._last_step else None
            try:
                with session_scope(self.database_url) as session:
                    insert_metric_points(session, rows)
                    if progress is not None:
                        where = [Run.id == self.run_id]
                        if self.attempt is not None:
                            where += [Run.attempt == self.attempt, Run.status == "running"]
                        session.execute(update(Run).where(*where).values(**progress))
            except Exception:
                self._buffer = rows + self._buffer  # nothing is dropped: the next flush retries
                raise
            self._last_flush = time.monotonic()
            self._flushed_step = self._last_step


class NullSink:
    """For ranks other than 0 of a multi-GPU run: rank 0 alone reports."""

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        return None

    def flush(self) -> None:
        return None
