"""`unisd worker`: registered on the main CLI through the `unisd.cli` entry point."""

from __future__ import annotations

from typing import Annotated

import typer

from backend.settings import QUEUES


def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = "cpu,gpu",
    concurrency: Annotated[int, typer.Option(min=1, help="Runs executed at once.")] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a Celery worker that executes training runs."""
    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(names) - set(QUEUES))
    if unknown or not names:
        raise typer.BadParameter(
            f"unknown queue(s) {unknown}; choose from {list(QUEUES)}", param_hint="--queues"
        )
    from workers.celery_app import celery_app

    celery_app.worker_main(
        [
            "worker",
            "-Q",
            ",".join(names),
            "-c",
            str(concurrency),
            "--loglevel",
            loglevel,
            "-n",
            f"unisd-{'-'.join(names)}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
