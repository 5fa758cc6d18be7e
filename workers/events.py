"""The run's log, streamed to `run_event`: log records are buffered in memory and written in
batches by the heartbeat thread, so the training thread never waits on the database for a line.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from backend.db.repositories import append_run_event
from backend.db.session import session_scope

#: Loggers whose records belong to the run (the trainer, the runner, the model libraries).
CAPTURED_LOGGERS = ("unisd_core", "workers", "transformers", "accelerate", "peft")
OWN_LOGGERS = ("unisd_core", "workers")
#: A chatty run cannot grow memory without bound between two flushes.
MAX_BUFFERED = 2000

_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}


def level_name(levelno: int) -> str:
    for threshold in (logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= threshold:
            return _LEVELS[threshold]
    return "debug"


class RunEventLog(logging.Handler):
    """A logging handler for one run attempt; `flush()` writes what it holds."""

    def __init__(self, database_url: str, run_id: int, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.database_url = database_url
        self.run_id = run_id
        self._pending: deque[tuple[str, str]] = deque(maxlen=MAX_BUFFERED)
        self._write_lock = threading.Lock()
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append((level_name(record.levelno), self.format(record)))
        except Exception:  # logging must never break the run
            self.handleError(record)

    def add(self, level: str, message: str) -> None:
        """A line from the runner itself (attempt started, resumed, cancelled, failed)."""
        self._pending.append((level, message))

    def flush(self) -> None:
        with self._write_lock:  # the heartbeat thread and the runner may both flush
            lines = []
            while self._pending:
                lines.append(self._pending.popleft())
            if not lines:
                return
            try:
                with session_scope(self.database_url) as session:
                    for level, message in lines:
                        append_run_event(session, self.run_id, level, message)
            except Exception:
                self._pending.extendleft(reversed(lines))  # keep them for the next flush
                raise

    def __enter__(self) -> RunEventLog:
        for name in CAPTURED_LOGGERS:
            logger = logging.getLogger(name)
            logger.addHandler(self)
            # Our own loggers speak at INFO during a run; the libraries keep their own level.
            if name in OWN_LOGGERS and logger.getEffectiveLevel() > self.level:
                logger.setLevel(self.level)
        return self

    def __exit__(self, *_: object) -> None:
        for name in CAPTURED_LOGGERS:
            logging.getLogger(name).removeHandler(self)
        try:
            self.flush()
        except Exception:
            logging.getLogger(__name__).warning(
                "could not write the last run events", exc_info=True
            )
