"""Where a running trainer's numbers go: batched, idempotent writes to SQL."""

from __future__ import annotations

import time
from collections.abc import Mapping

from sqlalchemy import update

from backend.db.base import utcnow
from backend.db.models import Run
from backend.db.repositories import insert_metric_points
from backend.db.session import session_scope

FLUSH_EVERY_POINTS = 500
FLUSH_EVERY_S = 1.0


class DbMetricSink:
    """Buffers points and writes them in one short transaction per flush.

    Each flush also records progress and a heartbeat, so the run page moves with the metrics.
    No transaction stays open between flushes (training never holds the database).
    """

    def __init__(self, database_url: str, run_id: int, total_steps: int) -> None:
        self.database_url = database_url
        self.run_id = run_id
        self.total_steps = max(total_steps, 1)
        self._buffer: list[dict[str, object]] = []
        self._last_step = 0
        self._last_flush = time.monotonic()

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        now = time.time()
        self._buffer.extend(
            {
                "run_id": self.run_id,
                "key": key,
                "step": step,
                "value": float(value),
                "wall_time": now,
            }
            for key, value in metrics.items()
        )
        self._last_step = max(self._last_step, step)
        due = time.monotonic() - self._last_flush >= FLUSH_EVERY_S
        if due or len(self._buffer) >= FLUSH_EVERY_POINTS:
            self.flush()

    def flush(self) -> None:
        rows, self._buffer = self._buffer, []
        with session_scope(self.database_url) as session:
            insert_metric_points(session, rows)
            session.execute(
                update(Run)
                .where(Run.id == self.run_id)
                .values(
                    step=self._last_step,
                    progress=min(self._last_step / self.total_steps, 1.0),
                    heartbeat_at=utcnow(),
                )
            )
        self._last_flush = time.monotonic()
