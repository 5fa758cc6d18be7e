"""The run's pulse: a background thread that proves the worker is alive and relays cancels.

It runs from the claim to the end of the attempt, model loading included, so a slow load never
looks like a dead worker. Every tick reads the cancel flag (the trainer only checks a
`threading.Event`, no database in the training loop); every few seconds it writes `heartbeat_at`.
The write is fenced by the attempt number: if the reaper gave the run to another worker (we
looked dead, e.g. a long network partition), the write matches no row and this attempt knows it
lost the run and must stop without touching it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import select, update

from backend.db.base import utcnow
from backend.db.models import Run
from backend.db.session import session_scope
from workers.liveness import BEAT_EVERY_S, FORCE_CANCEL_AFTER_S, POLL_EVERY_S

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self,
        database_url: str,
        run_id: int,
        attempt: int,
        *,
        beat_every_s: float = BEAT_EVERY_S,
        poll_every_s: float = POLL_EVERY_S,
        force_cancel_after_s: float = FORCE_CANCEL_AFTER_S,
        on_tick: list[Callable[[], None]] | None = None,
        on_wedged: Callable[[], None] | None = None,
    ) -> None:
        self.database_url = database_url
        self.run_id = run_id
        self.attempt = attempt
        self.beat_every_s = beat_every_s
        self.poll_every_s = poll_every_s
        self.force_cancel_after_s = force_cancel_after_s
        #: Work done on every tick besides the beat (flush run events, flush metric points).
        self.on_tick = list(on_tick or [])
        self.on_wedged = on_wedged
        self.cancel_requested = threading.Event()
        self.lost = threading.Event()
        self._cancel_seen_at: float | None = None
        self._last_beat = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-run-{run_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """End the pulse (idempotent); call before the final write so no beat races it."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:  # a database hiccup must not kill the pulse; the next tick retries
                log.warning("heartbeat of run %s failed; retrying", self.run_id, exc_info=True)
            self._stopping.wait(self.poll_every_s)

    def tick(self) -> None:
        now = time.monotonic()
        with session_scope(self.database_url) as session:
            if now - self._last_beat >= self.beat_every_s:
                result = session.execute(
                    update(Run)
                    .where(
                        Run.id == self.run_id,
                        Run.attempt == self.attempt,
                        Run.status == "running",
                    )
                    .values(heartbeat_at=utcnow())
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    log.error("run %s attempt %s lost its claim", self.run_id, self.attempt)
                    self.lost.set()
                self._last_beat = now
            cancel = session.scalar(select(Run.cancel_requested).where(Run.id == self.run_id))
        if cancel and not self.cancel_requested.is_set():
            log.info("run %s: cancel requested; stopping at the next step boundary", self.run_id)
            self.cancel_requested.set()
            self._cancel_seen_at = now
        for callback in self.on_tick:
            try:
                callback()
            except Exception:  # one failing flush must not starve the others or the cancel check
                log.warning("heartbeat task of run %s failed", self.run_id, exc_info=True)
        wedged = (
            self._cancel_seen_at is not None
            and now - self._cancel_seen_at > self.force_cancel_after_s
        )
        if wedged and self.on_wedged is not None:
            self.on_wedged()
