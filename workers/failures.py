"""Why a run failed, in one line a user can act on, and whether trying again could help.

Retrying only makes sense when the cause lies outside the run: a database or broker that was
briefly unreachable. A wrong config, missing model, bad data or a bug fails the same way every
time, so those fail at once (with the traceback kept as an artifact).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exc as sa_exc

#: Backoff before attempt n+1 after a transient failure of attempt n: 5 s, 10 s, 20 s, ... 5 min.
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 300.0
REASON_MAX_CHARS = 500


@dataclass(frozen=True)
class Failure:
    kind: str  # out_of_memory | missing_model | bad_data | config | transient | code
    reason: str
    retryable: bool


def _names(exc: BaseException) -> set[str]:
    """Class names along the MRO, so optional libraries need not be importable to match."""
    return {cls.__name__ for cls in type(exc).__mro__}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    # redis-py and kombu connection errors, without importing either here.
    return bool(_names(exc) & {"ConnectionError", "TimeoutError", "OperationalError"})


def classify(exc: BaseException) -> Failure:
    chain = _chain(exc)
    head = exc
    message = f"{type(head).__name__}: {head}"
    names = set().union(*(_names(e) for e in chain))
    text = " ".join(str(e) for e in chain).lower()
    if "OutOfMemoryError" in names or "out of memory" in text:
        knobs = (
            "data.eval_batch_size or data.eval_max_new_tokens"
            if "EvaluationFailed" in names
            else "train.batch_size or max_new_tokens"
        )
        return Failure(
            "out_of_memory", one_line(f"out of memory: reduce {knobs} ({message})"), retryable=False
        )
    if "ModelLoadError" in names:
        return Failure("missing_model", one_line(message), retryable=False)
    if "DataError" in names:
        return Failure("bad_data", one_line(message), retryable=False)
    if "ValidationError" in names or isinstance(head, ValueError | NotImplementedError):
        return Failure("config", one_line(message), retryable=False)
    if any(_is_transient(e) for e in chain):
        return Failure("transient", one_line(message), retryable=True)
    return Failure("code", one_line(message), retryable=False)


def one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= REASON_MAX_CHARS else flat[: REASON_MAX_CHARS - 3] + "..."


def backoff_s(attempt: int) -> float:
    """Seconds to wait before trying again after attempt `attempt` (1-based) failed."""
    return min(BACKOFF_BASE_S * 2 ** max(attempt - 1, 0), BACKOFF_MAX_S)


def write_traceback(exc: BaseException, directory: Path, attempt: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"traceback-attempt-{attempt}.txt"
    path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    return path
