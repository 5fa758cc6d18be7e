"""`unisd worker`, `unisd reap` and `unisd terminate`, registered on the main CLI through the
`unisd.cli` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from backend.processes import die_with_parent
from workers import liveness


def worker(
    queues: Annotated[
        str | None,
        typer.Option(help="Comma-separated queues: cpu, gpu, gpu-xN. Default: from --gpus."),
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(help="GPU ids this worker owns, e.g. 0 or 0,1 (sets CUDA_VISIBLE_DEVICES)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Runs executed at once (CPU).")] = 1,
    reap: Annotated[bool, typer.Option(help="Also run a reaper process beside the worker.")] = True,
    stale_after: Annotated[
        float, typer.Option(min=1, help="Reaper: seconds without heartbeat before a run is lost.")
    ] = liveness.STALE_AFTER_S,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a Celery worker that executes training runs (one per GPU in production)."""
    from workers import placement

    try:
        gpu_ids = placement.parse_gpu_ids(gpus) if gpus is not None else None
        names = (
            [q.strip() for q in queues.split(",") if q.strip()]
            if queues is not None
            else placement.default_queues(gpu_ids)
        )
        placement.check_queues(names, gpu_ids)
    except placement.PlacementError as exc:
        raise typer.BadParameter(str(exc), param_hint="--queues/--gpus") from exc
    if gpu_ids is not None:
        if concurrency != 1:
            raise typer.BadParameter(
                "a GPU worker runs one run at a time", param_hint="--concurrency"
            )
        # Set before Celery forks its pool: the run's process sees only this worker's GPUs.
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
    side = _start_reaper(stale_after) if reap else None
    _cpu_thread_policy(concurrency, on_gpu=gpu_ids is not None)
    # Import torch and the trainer once here: Celery's pool process is forked from this one and
    # starts warm, instead of paying the import (seconds) when its first run arrives.
    import unisd_core.trainer  # noqa: F401
    from workers.celery_app import celery_app

    label = "gpu" + "_".join(gpu_ids) if gpu_ids else "-".join(names)
    try:
        celery_app.worker_main(
            [
                "worker",
                "-Q",
                ",".join(names),
                "-c",
                str(concurrency),
                "--prefetch-multiplier",
                "1",
                "--loglevel",
                loglevel,
                "-n",
                f"unisd-{label}-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        if side is not None and side.poll() is None:
            side.terminate()


def _cpu_thread_policy(concurrency: int, *, on_gpu: bool) -> None:
    """OpenMP settings for torch, set before it is imported; the user's own OMP_* values win.

    CPU runs share the cores with the API, evaluation sandboxes and other workers. OpenMP's
    default busy-waiting then spins on cores another process needs: on a loaded 2-core machine
    a profiled step spent 62% of its time in libgomp's wait loop, and evaluation ran 10-15x
    slower than with one passive thread. Threads sleep instead, and concurrent runs split the
    cores instead of each taking all of them.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if not on_gpu:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // concurrency)))


def _start_reaper(stale_after: float) -> subprocess.Popen[bytes]:
    """The reaper runs in its own small process (no torch), never inside Celery's pool."""
    command = [
        sys.executable,
        "-m",
        "unisd_core.cli",
        "reap",
        "--loop",
        "--stale-after",
        str(stale_after),
        "--parent-pid",
        str(os.getpid()),
    ]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)


def reap(
    loop: Annotated[bool, typer.Option(help="Keep reaping every --every seconds.")] = False,
    every: Annotated[float, typer.Option(min=0.1, help="Seconds between passes.")] = (
        liveness.REAP_EVERY_S
    ),
    stale_after: Annotated[
        float, typer.Option(min=1, help="Seconds without heartbeat before a run is lost.")
    ] = liveness.STALE_AFTER_S,
    resend_after: Annotated[
        float, typer.Option(min=0, help="Seconds a queued run may be missing from the broker.")
    ] = liveness.RESEND_AFTER_S,
    parent_pid: Annotated[
        int | None, typer.Option(help="Exit when this process is gone (set by `unisd worker`).")
    ] = None,
) -> None:
    """Re-queue or fail runs whose worker died; re-send queued runs the broker lost."""
    from backend.queue import send_train_run
    from backend.settings import get_settings
    from workers import reaper
    from workers.broker_state import queued_run_ids

    settings = get_settings()
    database_url = settings.resolved_database_url

    def one_pass() -> object:
        return reaper.reap_once(
            database_url,
            lambda run_id, queue: send_train_run(settings, run_id, queue),
            lambda: queued_run_ids(settings.resolved_broker_url),
            stale_after_s=stale_after,
            resend_after_s=resend_after,
        )

    if not loop:
        typer.echo(one_pass())
        return
    reaper.run_forever(one_pass, every_s=every, parent_pid=parent_pid)


def terminate(run_id: Annotated[int, typer.Argument(help="The run to kill.")]) -> None:
    """Force-cancel a run whose worker is wedged: mark it cancelled and kill its task."""
    from backend.settings import get_settings
    from workers.cancel import force_cancel
    from workers.celery_app import celery_app

    try:
        status = force_cancel(get_settings().resolved_database_url, run_id, celery_app)
    except LookupError as exc:
        raise typer.BadParameter(str(exc), param_hint="RUN_ID") from exc
    typer.echo(f"run {run_id}: {status}")


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("reap")(reap)
    app.command("terminate")(terminate)
