"""The runner against a real SQLite database and the real trainer on the tiny model."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, update

from backend.db.models import Artifact, Evaluation, MetricLatest, MetricPoint, Run, RunEvent
from backend.db.session import session_scope
from backend.runs.service import create_run
from unisd_core import trainer
from unisd_core.config import RunConfig
from unisd_core.data import BUNDLED_DIR
from workers import runner

#: Evaluation on 4 items per benchmark with 8 generated tokens: a few seconds on the tiny model.
FAST_EVAL = {
    "evaluate_after_training": True,
    "max_eval_examples": 4,
    "eval_max_new_tokens": 8,
    "max_prompt_length": 256,
}


def new_run(url: str, **raw: Any) -> int:
    """An SFT run of the tiny model (the fastest objective), batch 1, unless `raw` says more.

    Most tests here are about running and stopping the trainer: evaluation is off unless `raw`
    asks for it (the tests below that check evaluation do).
    """
    raw = {
        "preset": "sft",
        **raw,
        "train": {"max_steps": 3, "batch_size": 1, **raw.get("train", {})},
        "data": {"evaluate_after_training": False, **raw.get("data", {})},
    }
    with session_scope(url) as session:
        return create_run(session, RunConfig.model_validate(raw), default_queue="cpu").id


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


def events(url: str, run_id: int) -> list[str]:
    with session_scope(url) as session:
        return list(
            session.scalars(
                select(RunEvent.message).where(RunEvent.run_id == run_id).order_by(RunEvent.id)
            )
        )


def execute(url: str, run_id: int, tmp_path: Path, worker: str = "w", **kwargs: Any) -> str:
    return runner.execute(run_id, url, worker=worker, runs_dir=tmp_path / "runs", **kwargs)


def test_run_it_twice_executes_once(sqlite_url: str, tmp_path: Path) -> None:
    run_id = new_run(sqlite_url, train={"max_steps": 3, "batch_size": 2})
    assert execute(sqlite_url, run_id, tmp_path, "w1") == "succeeded"
    assert execute(sqlite_url, run_id, tmp_path, "w2") == "skipped"
    run = get(sqlite_url, run_id)
    assert (run.status, run.worker, run.attempt, run.step, run.progress) == (
        "succeeded",
        "w1",
        1,
        3,
        1.0,
    )
    assert run.started_at and run.finished_at and run.finished_at >= run.started_at
    assert run.tokens_per_s and run.tokens_per_s > 0 and run.eta_at is not None
    assert run.env and run.env["hostname"] and "torch" in run.env["versions"]
    recorded = points(sqlite_url, run_id)
    assert len(recorded) == len(set(recorded))
    assert {step for key, step in recorded if key == "loss/total"} == {1, 2, 3}
    log = events(sqlite_url, run_id)
    assert log[0].startswith("attempt 1/3 started on w1") and "succeeded after step 3" in log[-1]


def test_a_cancelled_queued_run_never_starts(sqlite_url: str, tmp_path: Path) -> None:
    run_id = new_run(sqlite_url)
    with session_scope(sqlite_url) as session:
        session.execute(
            update(Run).where(Run.id == run_id).values(status="cancelled", cancel_requested=True)
        )
    assert execute(sqlite_url, run_id, tmp_path) == "skipped"
    assert get(sqlite_url, run_id).started_at is None
    assert points(sqlite_url, run_id) == []


def test_a_missing_model_fails_with_a_reason_and_a_traceback(
    sqlite_url: str, tmp_path: Path
) -> None:
    run_id = new_run(sqlite_url, model={"name_or_path": "/nonexistent/model-dir"})
    sent: list[tuple[int, str, float]] = []
    outcome = execute(sqlite_url, run_id, tmp_path, requeue=lambda *a: sent.append(a))
    assert outcome == "failed" and sent == []  # a missing model is not worth retrying
    run = get(sqlite_url, run_id)
    assert run.status == "failed" and run.attempt == 1
    assert run.error and "/nonexistent/model-dir" in run.error and "\n" not in run.error
    trace = tmp_path / "runs" / str(run_id) / "traceback-attempt-1.txt"
    assert "Traceback" in trace.read_text()
    with session_scope(sqlite_url) as session:
        kinds = session.execute(
            select(Artifact.kind, Artifact.name).where(Artifact.run_id == run_id)
        ).all()
    assert ("traceback", trace.name) in kinds
    assert any(line.startswith("failed: ") for line in events(sqlite_url, run_id))


def test_a_transient_error_is_retried_with_backoff(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt loses its database connection; the second resumes and succeeds."""
    real_train = trainer.train
    calls: list[int] = []

    def flaky_train(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise sa_exc.OperationalError("SELECT 1", {}, ConnectionError("server closed"))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(trainer, "train", flaky_train)
    run_id = new_run(sqlite_url, train={"max_steps": 2, "batch_size": 1})
    sent: list[tuple[int, str, float]] = []
    requeue = lambda *a: sent.append(a)  # noqa: E731
    assert execute(sqlite_url, run_id, tmp_path, requeue=requeue) == "retrying"
    run = get(sqlite_url, run_id)
    assert run.status == "queued" and run.attempt == 1 and run.worker is None
    assert run.queued_at is not None and run.error and "OperationalError" in run.error
    assert sent == [(run_id, "cpu", 5.0)]
    assert execute(sqlite_url, run_id, tmp_path, requeue=requeue) == "succeeded"
    run = get(sqlite_url, run_id)
    assert (run.status, run.attempt, run.error) == ("succeeded", 2, None)


def test_cancel_while_running_stops_at_a_step_boundary(sqlite_url: str, tmp_path: Path) -> None:
    run_id = new_run(sqlite_url, train={"max_steps": 500, "batch_size": 1})

    def cancel_once_started() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and get(sqlite_url, run_id).step < 1:
            time.sleep(0.05)
        with session_scope(sqlite_url) as session:
            session.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))

    canceller = threading.Thread(target=cancel_once_started)
    canceller.start()
    assert execute(sqlite_url, run_id, tmp_path) == "cancelled"
    canceller.join()
    run = get(sqlite_url, run_id)
    assert run.status == "cancelled" and 1 <= run.step < 500
    with session_scope(sqlite_url) as session:
        stored = session.scalar(
            select(func.max(MetricPoint.step)).where(MetricPoint.run_id == run_id)
        )
        kinds = set(session.scalars(select(Artifact.kind).where(Artifact.run_id == run_id)))
    assert stored == run.step  # every step reported before the stop reached the database
    assert "checkpoint" in kinds  # the stop saved one to resume from
    assert any("cancel requested" in line for line in events(sqlite_url, run_id))


def test_an_attempt_resumes_from_the_last_checkpoint(sqlite_url: str, tmp_path: Path) -> None:
    """A second attempt (after a lost worker) continues after the checkpoint, not from zero."""
    run_id = new_run(
        sqlite_url,
        train={"max_steps": 4, "batch_size": 1, "checkpoint_every": 2},
        data={**FAST_EVAL, "eval_benchmarks": ["scienceqa"]},
    )
    assert execute(sqlite_url, run_id, tmp_path) == "succeeded"
    # As if the worker had died after step 4's checkpoint and the reaper re-queued the run
    # (with two more steps to go, so the resumed attempt has work to do).
    config = get(sqlite_url, run_id).config
    longer = {**config, "train": {**config["train"], "max_steps": 6}}
    with session_scope(sqlite_url) as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(status="queued", config=longer, total_steps=6)
        )
    assert execute(sqlite_url, run_id, tmp_path) == "succeeded"
    run = get(sqlite_url, run_id)
    assert (run.attempt, run.step) == (2, 6)
    steps = [step for key, step in points(sqlite_url, run_id) if key == "loss/total"]
    assert steps == [1, 2, 3, 4, 5, 6]  # unique and gap-free across the two attempts
    assert any("resuming from the last checkpoint" in line for line in events(sqlite_url, run_id))
    # Both attempts evaluated their final model; the second replaced the first's items.
    evaluated = [s for k, s in points(sqlite_url, run_id) if k == "eval/scienceqa/accuracy"]
    assert evaluated == [4, 6]
    report = json.loads((tmp_path / "runs" / str(run_id) / "eval" / "report.json").read_text())
    assert report["settings"]["checkpoint"].endswith("step-000006")
    assert report["resumed_items"] == 0


def test_a_reaped_attempt_stops_without_touching_the_run(sqlite_url: str, tmp_path: Path) -> None:
    """Fencing: once the run belongs to a newer attempt, the old one writes nothing more."""
    run_id = new_run(sqlite_url, train={"max_steps": 500, "batch_size": 1})

    def steal_once_started() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and get(sqlite_url, run_id).step < 1:
            time.sleep(0.05)
        with session_scope(sqlite_url) as session:  # what a reaper + a new claim would do
            session.execute(
                update(Run).where(Run.id == run_id).values(attempt=Run.attempt + 1, worker="w2")
            )

    thief = threading.Thread(target=steal_once_started)
    thief.start()
    assert execute(sqlite_url, run_id, tmp_path, "w1") == "lost"
    thief.join()
    run = get(sqlite_url, run_id)
    assert (run.status, run.worker, run.attempt, run.finished_at) == ("running", "w2", 2, None)


def test_a_run_needing_more_gpus_than_the_worker_owns_fails_clearly(
    sqlite_url: str, tmp_path: Path
) -> None:
    run_id = new_run(sqlite_url, resources={"gpus": 2}, train={"batch_size": 2})
    assert execute(sqlite_url, run_id, tmp_path, gpu_ids=["0"]) == "failed"
    error = get(sqlite_url, run_id).error
    assert error and "needs 2 GPUs but this worker owns 1" in error


def test_the_distributed_entry_point_trains_and_reports(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What each accelerate process runs, here as a single rank 0 on the CPU."""
    from backend.settings import get_settings
    from workers import distributed

    run_id = new_run(sqlite_url, train={"max_steps": 2})
    with session_scope(sqlite_url) as session:
        session.execute(update(Run).where(Run.id == run_id).values(status="running", attempt=1))
    monkeypatch.setenv("UNISD_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("UNISD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert distributed.main(["--run-id", str(run_id), "--attempt", "1"]) == 0
    finally:
        get_settings.cache_clear()
    outcome = (tmp_path / "runs" / str(run_id) / "attempt-1-result.json").read_text()
    assert '"succeeded"' in outcome
    assert [s for k, s in points(sqlite_url, run_id) if k == "loss/total"] == [1, 2]


def evaluations(url: str, run_id: int) -> list[Evaluation]:
    with session_scope(url) as session:
        rows = list(
            session.scalars(
                select(Evaluation)
                .where(Evaluation.run_id == run_id)
                .order_by(Evaluation.benchmark, Evaluation.metric)
            )
        )
        session.expunge_all()
        return rows


def test_a_finished_run_is_evaluated_and_its_scores_stored(sqlite_url: str, tmp_path: Path) -> None:
    run_id = new_run(sqlite_url, train={"max_steps": 2}, data=FAST_EVAL)
    assert execute(sqlite_url, run_id, tmp_path) == "succeeded"
    assert get(sqlite_url, run_id).status == "succeeded"

    rows = evaluations(sqlite_url, run_id)
    by_key = {(r.benchmark, r.metric): r for r in rows}
    assert {b for b, _ in by_key} == {"scienceqa", "gpqa"}
    assert ("scienceqa", "n") not in by_key  # the item count is each row's `n`
    accuracy = by_key[("scienceqa", "accuracy")]
    assert 0.0 <= accuracy.value <= 1.0
    assert (accuracy.n, accuracy.split, accuracy.details_artifact) == (
        4,
        "test",
        "eval/items.jsonl",
    )
    assert by_key[("gpqa", "accuracy")].n == 4
    assert ("gpqa", "retention_ppl") in by_key  # the adapters against the base

    with session_scope(sqlite_url) as session:
        artifacts = set(
            session.execute(
                select(Artifact.kind, Artifact.name).where(Artifact.run_id == run_id)
            ).tuples()
        )
        latest = session.get(MetricLatest, (run_id, "eval/scienceqa/accuracy"))
        assert latest is not None and (latest.step, latest.value) == (2, accuracy.value)
    assert ("eval_report", "eval/report.json") in artifacts
    assert ("checkpoint", "step-000002") in artifacts
    assert ("eval/gpqa/accuracy", 2) in points(sqlite_url, run_id)
    assert ("retention/ppl", 2) in points(sqlite_url, run_id)
    log = events(sqlite_url, run_id)
    assert any(line == "trained 2 steps; evaluating" for line in log)
    assert any(re.fullmatch(r"evaluated on scienceqa, gpqa in \d+ s", line) for line in log)
    assert log[-1] == "succeeded after step 2"


def test_the_base_preset_evaluates_the_untrained_model(sqlite_url: str, tmp_path: Path) -> None:
    run_id = new_run(sqlite_url, preset="base", data=FAST_EVAL)
    assert execute(sqlite_url, run_id, tmp_path) == "succeeded"
    assert {(r.benchmark, r.metric) for r in evaluations(sqlite_url, run_id)} >= {
        ("scienceqa", "accuracy"),
        ("gpqa", "accuracy"),
    }
    assert ("eval/scienceqa/accuracy", 0) in points(sqlite_url, run_id)
    assert not any(key.startswith("loss/") for key, _ in points(sqlite_url, run_id))
    assert "nothing to train (objective none); evaluating" in events(sqlite_url, run_id)


def test_an_evaluation_error_fails_the_run_at_once(sqlite_url: str, tmp_path: Path) -> None:
    """Local data holding scienceqa alone: training works, the gpqa evaluation cannot load."""
    data = tmp_path / "data"
    shutil.copytree(BUNDLED_DIR / "scienceqa", data / "scienceqa")
    run_id = new_run(
        sqlite_url, train={"max_steps": 1}, data={**FAST_EVAL, "source": f"local:{data}"}
    )
    sent: list[tuple[int, str, float]] = []
    outcome = execute(sqlite_url, run_id, tmp_path, requeue=lambda *a: sent.append(a))
    assert outcome == "failed" and sent == []  # bad data fails the same way every time
    run = get(sqlite_url, run_id)
    assert run.status == "failed" and run.attempt == 1
    assert run.error and "evaluating it failed" in run.error and "gpqa" in run.error
    assert evaluations(sqlite_url, run_id) == []
    with session_scope(sqlite_url) as session:
        kinds = set(session.scalars(select(Artifact.kind).where(Artifact.run_id == run_id)))
    assert {"checkpoint", "traceback"} <= kinds  # the trained model is kept


def test_a_cancel_during_evaluation_ends_the_run_cancelled(sqlite_url: str, tmp_path: Path) -> None:
    """The cancel arrives once evaluation has started; items finished so far are kept."""
    # 40 items one at a time (about 10 s): the cancel lands long before the last one.
    slow_eval = {**FAST_EVAL, "max_eval_examples": None, "eval_max_new_tokens": 48}
    run_id = new_run(sqlite_url, train={"max_steps": 1}, data={**slow_eval, "eval_batch_size": 1})
    items = tmp_path / "runs" / str(run_id) / "eval" / "items.jsonl"

    def cancel_once_evaluating() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not items.is_file():
            time.sleep(0.02)
        with session_scope(sqlite_url) as session:
            session.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))

    canceller = threading.Thread(target=cancel_once_evaluating)
    canceller.start()
    assert execute(sqlite_url, run_id, tmp_path) == "cancelled"
    canceller.join()
    assert get(sqlite_url, run_id).status == "cancelled"
    assert 1 <= len(items.read_text().splitlines()) < 40  # stopped between items
    assert evaluations(sqlite_url, run_id) == []
    log = events(sqlite_url, run_id)
    assert "cancel requested: evaluation stopped (finished items are kept)" in log
    assert log[-1] == "cancelled after step 1"
