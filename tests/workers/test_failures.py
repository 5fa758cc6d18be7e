"""Failure reasons: one line, and retried only when the cause is outside the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

from unisd_core.data.schema import DataError
from unisd_core.modeling import ModelLoadError
from workers import failures


class OutOfMemoryError(RuntimeError):
    """Stands for torch.cuda.OutOfMemoryError (matched by name: no GPU here)."""


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), "out_of_memory", False),
        (ModelLoadError("model.name_or_path 'x' could not be loaded"), "missing_model", False),
        (DataError("scienceqa/train from local:/x holds no examples"), "bad_data", False),
        (ValueError("agreement.num_auxiliary_contexts=9 needs more examples"), "config", False),
        (NotImplementedError("resources.gpus > 1"), "config", False),
        (KeyError("loss/total"), "code", False),
        (AttributeError("'NoneType' object has no attribute 'logits'"), "code", False),
        (sa_exc.OperationalError("SELECT 1", {}, Exception("server closed")), "transient", True),
        (ConnectionRefusedError("redis"), "transient", True),
        (TimeoutError("database"), "transient", True),
    ],
)
def test_classify(exc: BaseException, kind: str, retryable: bool) -> None:
    failure = failures.classify(exc)
    assert (failure.kind, failure.retryable) == (kind, retryable)
    assert "\n" not in failure.reason and type(exc).__name__ in failure.reason


def test_the_cause_chain_counts() -> None:
    outer = RuntimeError("flush failed")
    outer.__cause__ = ConnectionResetError("peer reset")
    assert failures.classify(outer).retryable


def test_evaluation_failures_keep_their_cause_and_name_the_eval_settings() -> None:
    from workers.runner import EvaluationFailed

    def wrapped(cause: BaseException) -> EvaluationFailed:
        outer = EvaluationFailed(f"evaluating it failed with {type(cause).__name__}: {cause}")
        outer.__cause__ = cause
        return outer

    bad = failures.classify(wrapped(DataError("gpqa/test from local:/x: no such file")))
    assert (bad.kind, bad.retryable) == ("bad_data", False)
    assert "EvaluationFailed" in bad.reason and "gpqa" in bad.reason
    oom = failures.classify(wrapped(OutOfMemoryError("CUDA out of memory")))
    assert oom.kind == "out_of_memory" and "data.eval_batch_size" in oom.reason
    assert failures.classify(wrapped(ConnectionResetError("database gone"))).retryable


def test_reasons_are_one_short_line() -> None:
    reason = failures.classify(RuntimeError("a\nb\n" + "x" * 5000)).reason
    assert "\n" not in reason and len(reason) <= failures.REASON_MAX_CHARS


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [failures.backoff_s(a) for a in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert failures.backoff_s(30) == failures.BACKOFF_MAX_S


def test_the_traceback_is_kept_in_a_file(tmp_path: Path) -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        path = failures.write_traceback(exc, tmp_path / "runs" / "4", attempt=2)
    assert path.name == "traceback-attempt-2.txt"
    assert "Traceback" in path.read_text() and "KeyError" in path.read_text()
