"""The database sink: idempotent points, progress with throughput and ETA, flush timing."""

from __future__ import annotations

from sqlalchemy import func, select

from backend.db.models import MetricPoint, Run
from backend.db.session import session_scope
from backend.runs.service import create_run
from unisd_core.config import RunConfig
from workers.sinks import DbMetricSink


def running_run(url: str) -> int:
    with session_scope(url) as session:
        run = create_run(session, RunConfig.model_validate({"preset": "sft"}), default_queue="cpu")
        run.status, run.attempt = "running", 1
        return run.id


def stored(url: str, run_id: int) -> int:
    with session_scope(url) as session:
        count = session.scalar(select(func.count()).where(MetricPoint.run_id == run_id))
        return int(count or 0)


def get(url: str, run_id: int) -> Run:
    with session_scope(url) as session:
        run = session.get(Run, run_id)
        assert run is not None
        session.expunge(run)
        return run


def metrics(step_s: float = 0.5) -> dict[str, float]:
    return {"loss/total": 1.0, "sys/step_s": step_s, "sys/tokens_per_s": 100.0}


def test_background_mode_leaves_the_step_path_except_before_checkpoints(sqlite_url: str) -> None:
    run_id = running_run(sqlite_url)
    sink = DbMetricSink(sqlite_url, run_id, 10, attempt=1, checkpoint_every=4, background=True)
    for step in (1, 2, 3):
        sink(step, metrics())
    assert stored(sqlite_url, run_id) == 0  # buffered: the heartbeat thread flushes these
    sink(4, metrics())  # the trainer checkpoints after step 4: it must not get ahead of the db
    assert stored(sqlite_url, run_id) == 4 * 3
    run = get(sqlite_url, run_id)
    assert (run.step, run.progress, run.tokens_per_s) == (4, 0.4, 100.0)
    assert run.eta_at is not None and run.heartbeat_at is not None
    # 6 steps of ~0.5 s remain.
    assert 2.0 < (run.eta_at - run.heartbeat_at).total_seconds() < 4.0


def test_replayed_points_are_ignored_and_empty_flushes_cost_nothing(sqlite_url: str) -> None:
    run_id = running_run(sqlite_url)
    first = DbMetricSink(sqlite_url, run_id, 3, attempt=1)
    for step in (1, 2, 3):
        first(step, metrics())
    again = DbMetricSink(sqlite_url, run_id, 3, attempt=1)  # a resumed attempt re-reports 2..3
    for step in (2, 3):
        again(step, {"loss/total": 9.0})
    again.flush()
    assert stored(sqlite_url, run_id) == 3 * 3
    with session_scope(sqlite_url) as session:
        values = session.scalars(
            select(MetricPoint.value).where(
                MetricPoint.run_id == run_id, MetricPoint.key == "loss/total"
            )
        ).all()
    assert values == [1.0, 1.0, 1.0]  # the first write wins


def test_a_stale_attempt_cannot_move_the_progress(sqlite_url: str) -> None:
    run_id = running_run(sqlite_url)
    stale = DbMetricSink(sqlite_url, run_id, 10, attempt=0)
    stale(5, metrics())
    stale.flush()
    assert get(sqlite_url, run_id).step == 0


def test_epoch_based_runs_take_their_length_from_the_trainer(sqlite_url: str) -> None:
    run_id = running_run(sqlite_url)
    sink = DbMetricSink(sqlite_url, run_id, 0, attempt=1)  # max_steps is empty: epochs
    sink(1, {**metrics(), "train/total_steps": 20.0})
    sink(2, metrics())
    sink.flush()
    run = get(sqlite_url, run_id)
    assert run.progress == 0.1  # 2 of the trainer's 20 steps, not "done" after one step
    assert run.eta_at is not None and run.heartbeat_at is not None
    assert 8.0 < (run.eta_at - run.heartbeat_at).total_seconds() < 10.0  # 18 steps of 0.5 s


def test_the_trainer_reports_its_step_count_once_per_attempt() -> None:
    from tests.core.trainer.trainer_helpers import fast_config
    from unisd_core import train
    from unisd_core.callbacks import ListSink

    sink = ListSink()
    cfg = fast_config("sft", train={"max_steps": None, "epochs": 1.0, "batch_size": 4})
    result = train(cfg, sink)
    assert sink.points["train/total_steps"] == [(1, float(result.steps_completed))]
