"""Execute one attempt of a run: claim it, train with a database sink under a heartbeat, finalize.

Called by the Celery task; every database write here is short, and every write after the claim
is fenced by the attempt number, so an attempt the reaper has given away cannot touch the run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from backend.db.base import utcnow
from backend.db.models import Run
from backend.db.repositories import add_artifact, add_evaluation
from backend.db.session import session_scope
from unisd_core.config import RunConfig
from workers import failures, placement
from workers.events import RunEventLog
from workers.heartbeat import Heartbeat
from workers.sinks import DbMetricSink

if TYPE_CHECKING:
    from unisd_core.trainer import TrainResult

log = logging.getLogger(__name__)

#: Sends the run's task again after `countdown` seconds: (run_id, queue, countdown).
Requeue = Callable[[int, str, float], object]


class RunLost(Exception):
    """This attempt no longer owns the run (the reaper re-queued it): stop, write nothing."""


@dataclass(frozen=True)
class Claim:
    config: RunConfig
    attempt: int
    max_attempts: int
    queue: str


def claim(
    database_url: str,
    run_id: int,
    worker: str,
    *,
    task_id: str | None = None,
    env: dict[str, Any] | None = None,
) -> Claim | None:
    """Atomically move a queued run to running; None if another delivery got it first.

    The conditional UPDATE is the lock: of two workers racing on one run, one sees rowcount 1.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "status": "running",
        "worker": worker,
        "attempt": Run.attempt + 1,
        "started_at": func.coalesce(Run.started_at, now),
        "heartbeat_at": now,
        "task_id": task_id,
    }
    if env is not None:
        values["env"] = env
        values["code_version"] = env.get("git_sha")
    with session_scope(database_url) as session:
        result = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == "queued", Run.cancel_requested.is_(False))
            .values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.execute(
            select(Run.config, Run.attempt, Run.max_attempts, Run.queue).where(Run.id == run_id)
        ).one()
    return Claim(RunConfig.model_validate(row.config), row.attempt, row.max_attempts, row.queue)


class StopSignal:
    """The trainer's `stop()`: reads flags the heartbeat thread keeps, never the database.

    Before saying "stop" it flushes the sink, so the checkpoint written on stop is never ahead of
    the stored metric points.
    """

    def __init__(self, heartbeat: Heartbeat, sink: DbMetricSink) -> None:
        self.heartbeat = heartbeat
        self.sink = sink

    def __call__(self) -> bool:
        if self.heartbeat.lost.is_set():
            raise RunLost(f"run {self.heartbeat.run_id} was re-queued while this attempt ran")
        if self.heartbeat.cancel_requested.is_set():
            self.sink.flush()
            return True
        return False


def _finish(database_url: str, run_id: int, attempt: int, **values: Any) -> bool:
    """Fenced final write: only the attempt that still runs the run may finish it."""
    with session_scope(database_url) as session:
        result = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.attempt == attempt, Run.status == "running")
            .values(heartbeat_at=utcnow(), **values)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def finalize(
    database_url: str, run_id: int, attempt: int, status: str, error: str | None = None
) -> bool:
    return _finish(database_url, run_id, attempt, status=status, error=error, finished_at=utcnow())


def _register(database_url: str, run_id: int, kind: str, path: Path) -> None:
    size = (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )
    with session_scope(database_url) as session:
        add_artifact(session, run_id, kind, path.name, path.resolve().as_uri(), size)


def _self_terminate(database_url: str, run_id: int, attempt: int) -> Callable[[], None]:
    """The heartbeat's last resort for a trainer that ignores a cancel (stuck inside a step)."""

    def terminate() -> None:
        _finish(
            database_url,
            run_id,
            attempt,
            status="cancelled",
            finished_at=utcnow(),
            error="force-terminated: the trainer did not stop at a step boundary in time",
        )
        log.error("run %s: trainer wedged after cancel; terminating this process", run_id)
        os._exit(70)  # the pool replaces this process; the redelivered task finds it finished

    return terminate


def execute(
    run_id: int,
    database_url: str,
    *,
    worker: str,
    runs_dir: Path | None = None,
    task_id: str | None = None,
    gpu_ids: list[str] | None = None,
    requeue: Requeue | None = None,
    terminate_when_wedged: bool = False,
) -> str:
    """Run one attempt of `run_id`; returns the outcome.

    Outcomes: succeeded, failed, cancelled, retrying (queued again after a transient error),
    lost (the reaper gave the run away meanwhile), skipped (not claimable: a duplicate delivery,
    a cancelled queued run, a run that is gone).
    """
    gpus = gpu_ids if gpu_ids is not None else placement.visible_gpu_ids()
    claimed = claim(
        database_url, run_id, worker, task_id=task_id, env=placement.execution_env(gpus)
    )
    if claimed is None:
        log.info("run %s is not queued (claimed elsewhere, cancelled or gone): skipping", run_id)
        return "skipped"
    out_dir = (runs_dir or Path(".unisd/runs")) / str(run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    attempt = claimed.attempt
    events = RunEventLog(database_url, run_id)
    heartbeat = Heartbeat(
        database_url,
        run_id,
        attempt,
        on_tick=[events.flush],
        on_wedged=_self_terminate(database_url, run_id, attempt) if terminate_when_wedged else None,
    )
    with events, heartbeat:
        events.add(
            "info",
            f"attempt {attempt}/{claimed.max_attempts} started on {worker}"
            + (f" (GPUs {','.join(gpus)})" if gpus else " (CPU)"),
        )
        try:
            status = _train(claimed, run_id, database_url, out_dir, heartbeat, events, gpus)
        except RunLost as exc:
            log.warning("%s", exc)
            return "lost"
        except Exception as exc:
            log.exception("run %s attempt %s failed", run_id, attempt)
            heartbeat.stop()
            return _fail(claimed, run_id, database_url, out_dir, exc, events, requeue)
    return status


def _train(
    claimed: Claim,
    run_id: int,
    database_url: str,
    out_dir: Path,
    heartbeat: Heartbeat,
    events: RunEventLog,
    gpus: list[str],
) -> str:
    config, attempt = claimed.config, claimed.attempt
    needed = config.resources.gpus
    if needed > 1:
        if len(gpus) < needed:
            raise PlacementMismatch(
                f"run needs {needed} GPUs but this worker owns {len(gpus)} ({gpus or 'none'}); "
                f"start workers for it with `unisd worker --gpus` listing {needed} GPUs"
            )
        return _train_distributed(claimed, run_id, database_url, out_dir, heartbeat, gpus, events)

    from unisd_core.pipeline import train_and_evaluate  # torch loads only in the worker

    sink = DbMetricSink(
        database_url,
        run_id,
        config.train.max_steps or 0,
        attempt=attempt,
        checkpoint_every=config.train.checkpoint_every,
        background=True,
    )
    heartbeat.on_tick.append(sink.flush_if_due)  # points reach the database off the step path
    resume_from = _resume_from(out_dir)
    if resume_from is not None:
        events.add("info", f"resuming from the last checkpoint in {out_dir}")
    evaluating = False

    def on_trained(trained: TrainResult) -> None:
        # Between training and evaluation: the checkpoint and the curves are stored before a
        # possibly long evaluation starts, so a failure there loses neither.
        nonlocal evaluating
        sink.flush()
        _register_checkpoint(database_url, run_id, out_dir, trained)
        if trained.stopped_early or not config.data.evaluate_after_training:
            return
        done = (
            "nothing to train (objective none)"
            if config.objective == "none"
            else f"trained {trained.steps_completed} steps"
        )
        events.add("info", f"{done}; evaluating")
        evaluating = True

    try:
        # The heartbeat thread keeps beating (and reading the cancel flag) during evaluation;
        # the evaluation polls the same stop signal after each chunk of items it saves.
        outcome = train_and_evaluate(
            config,
            sink,
            StopSignal(heartbeat, sink),
            output_dir=out_dir,
            resume_from=resume_from,
            on_trained=on_trained,
        )
    except RunLost:
        raise
    except Exception as exc:
        if evaluating:
            raise EvaluationFailed(
                f"training finished but evaluating it failed with {type(exc).__name__}: {exc}"
            ) from exc
        raise
    sink.flush()  # the eval metrics went to the sink last: into metric_points/metric_latest now
    if outcome.eval_report is not None:
        _record_evaluations(database_url, run_id, outcome.eval_report, out_dir, events)
        benchmarks = ", ".join(outcome.eval_report["settings"]["benchmarks"])
        events.add("info", f"evaluated on {benchmarks} in {outcome.eval_seconds or 0:.0f} s")
    elif outcome.eval_stopped:
        events.add("info", "cancel requested: evaluation stopped (finished items are kept)")
    result = outcome.train
    # A cancel that arrives after the last check (during the final chunk of the evaluation) still
    # wins: the user asked for the run to end as cancelled, whatever it finished meanwhile.
    cancelled = outcome.stopped_early or heartbeat.cancel_requested.is_set()
    status = "cancelled" if cancelled else "succeeded"
    events.add("info", f"{status} after step {result.steps_completed}")
    heartbeat.stop()
    if not finalize(database_url, run_id, attempt, status):
        raise RunLost(f"run {run_id} changed hands before attempt {attempt} could finish it")
    return status


class EvaluationFailed(RuntimeError):
    """Training finished (its checkpoint is kept) but evaluating the result raised."""


def _resume_from(out_dir: Path) -> Path | None:
    from unisd_core.checkpoint import latest_checkpoint

    return out_dir if latest_checkpoint(out_dir) is not None else None


def _register_checkpoint(
    database_url: str, run_id: int, out_dir: Path, trained: TrainResult
) -> None:
    checkpoint = trained.checkpoint
    if checkpoint is None and trained.steps_completed > 0:
        # A resumed attempt whose checkpoint was already final saves none: the last one counts.
        from unisd_core.checkpoint import latest_checkpoint

        checkpoint = latest_checkpoint(out_dir)
    if checkpoint is not None:
        _register(database_url, run_id, "checkpoint", Path(checkpoint))


def _record_evaluations(
    database_url: str,
    run_id: int,
    report: dict[str, Any],
    out_dir: Path,
    events: RunEventLog,
) -> None:
    """One Evaluation row per benchmark metric, and the report as an `eval_report` artifact."""
    from unisd_core.evaluation.cli import ITEMS_FILE, REPORT_FILE
    from unisd_core.pipeline import EVAL_DIR

    splits: dict[str, str] = report["settings"]["splits"]
    skipped: list[str] = []
    with session_scope(database_url) as session:
        for benchmark, metrics in report["metrics"].items():
            n = int(metrics["n"]) if "n" in metrics else None
            for metric, value in metrics.items():
                if metric == "n" or not isinstance(value, int | float):
                    continue  # the item count is each row's `n`, not a score of its own
                if not math.isfinite(value):
                    skipped.append(f"{benchmark}/{metric}")  # JSON clients cannot read inf/nan
                    continue
                add_evaluation(
                    session,
                    run_id,
                    benchmark,
                    metric,
                    float(value),
                    n=n,
                    split=splits.get(benchmark, "test"),
                    details_artifact=f"{EVAL_DIR}/{ITEMS_FILE}",
                )
    if skipped:
        events.add("warning", f"not stored (not a finite number): {', '.join(skipped)}")
    report_path = out_dir / EVAL_DIR / REPORT_FILE
    with session_scope(database_url) as session:
        # Named by its place in the run directory: `report.json` alone could clash with another
        # artifact of the run, and names are unique per run.
        add_artifact(
            session,
            run_id,
            "eval_report",
            f"{EVAL_DIR}/{REPORT_FILE}",
            report_path.resolve().as_uri(),
            report_path.stat().st_size,
        )


class PlacementMismatch(ValueError):
    """The run reached a worker that cannot host it (a misrouted queue)."""


def _fail(
    claimed: Claim,
    run_id: int,
    database_url: str,
    out_dir: Path,
    exc: BaseException,
    events: RunEventLog,
    requeue: Requeue | None,
) -> str:
    attempt = claimed.attempt
    failure = failures.classify(exc)
    trace = failures.write_traceback(exc, out_dir, attempt)
    try:
        _register(database_url, run_id, "traceback", trace)
    except Exception:  # the database may be the very thing that failed
        log.warning("could not register %s", trace, exc_info=True)
    retry = failure.retryable and attempt < claimed.max_attempts and requeue is not None
    if retry:
        assert requeue is not None
        wait_s = failures.backoff_s(attempt)
        events.add(
            "warning", f"attempt {attempt} failed ({failure.reason}); retry in {wait_s:.0f} s"
        )
        queued = _finish(
            database_url,
            run_id,
            attempt,
            status="queued",
            worker=None,
            queued_at=utcnow() + timedelta(seconds=wait_s),
            error=f"attempt {attempt} failed, will retry: {failure.reason}",
        )
        if queued:
            requeue(run_id, claimed.queue, wait_s)  # lost sends are re-sent by the reaper
            return "retrying"
        return "lost"
    reason = failure.reason
    if failure.retryable and attempt >= claimed.max_attempts:
        reason = f"gave up after {attempt} attempts: {reason}"
    events.add("error", f"failed: {reason} (traceback: {trace.name})")
    finalize(database_url, run_id, attempt, "failed", error=reason)
    return "failed"


# --- several GPUs: one process per GPU under accelerate ----------------------------------------

#: How long a cancelled multi-GPU launch gets to stop by itself before it is killed.
DISTRIBUTED_CANCEL_GRACE_S = 60.0
DISTRIBUTED_POLL_S = 0.5


def result_file(out_dir: Path, attempt: int) -> Path:
    return out_dir / f"attempt-{attempt}-result.json"


class DistributedFailure(RuntimeError):
    """The launched processes failed; the message is the child's one-line reason."""


def _train_distributed(
    claimed: Claim,
    run_id: int,
    database_url: str,
    out_dir: Path,
    heartbeat: Heartbeat,
    gpus: list[str],
    events: RunEventLog,
) -> str:
    """Launch `workers.distributed` under accelerate and watch it; the heartbeat stays here.

    The launched processes train and rank 0 evaluates; this process then stores what they left:
    the checkpoint, and the evaluation report as Evaluation rows.
    """
    command = placement.accelerate_command(
        run_id=run_id,
        attempt=claimed.attempt,
        gpu_ids=gpus[: claimed.config.resources.gpus],
        main_process_port=placement.free_local_port(),
    )
    process = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL)
    cancel_seen: float | None = None
    while process.poll() is None:
        if heartbeat.lost.is_set():
            _kill_group(process)
            raise RunLost(f"run {run_id} was re-queued while its launch ran")
        if heartbeat.cancel_requested.is_set():
            cancel_seen = cancel_seen or time.monotonic()
            if time.monotonic() - cancel_seen > DISTRIBUTED_CANCEL_GRACE_S:
                _kill_group(process)
                finalize(database_url, run_id, claimed.attempt, "cancelled", "force-terminated")
                return "cancelled"
        time.sleep(DISTRIBUTED_POLL_S)
    outcome_path = result_file(out_dir, claimed.attempt)
    outcome = json.loads(outcome_path.read_text()) if outcome_path.is_file() else {}
    status = outcome.get("status")
    if process.returncode != 0 or status not in ("succeeded", "cancelled"):
        reason = outcome.get("reason") or f"accelerate launch exited with {process.returncode}"
        raise DistributedFailure(reason)
    _register_latest_checkpoint(database_url, run_id, out_dir)
    report_path = outcome.get("eval_report")
    if status == "succeeded" and report_path:
        report = json.loads(Path(report_path).read_text(encoding="utf-8"))
        _record_evaluations(database_url, run_id, report, out_dir, events)
        events.add("info", f"evaluated on {', '.join(report['settings']['benchmarks'])}")
    heartbeat.stop()
    if not finalize(database_url, run_id, claimed.attempt, status):
        raise RunLost(f"run {run_id} changed hands before attempt {claimed.attempt} finished")
    return str(status)


def _register_latest_checkpoint(database_url: str, run_id: int, out_dir: Path) -> None:
    from unisd_core.checkpoint import latest_checkpoint

    checkpoint = latest_checkpoint(out_dir)
    if checkpoint is not None:
        _register(database_url, run_id, "checkpoint", checkpoint)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have exited by itself meanwhile
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
