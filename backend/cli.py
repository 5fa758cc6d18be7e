"""`unisd serve` and `unisd db ...`, plugged into the main CLI via the `unisd.cli` entry point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Annotated

import typer

from backend import admin_cli
from backend.processes import die_with_parent, exit_on_sigterm
from backend.settings import Settings, get_settings

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations to the configured database (UNISD_DATABASE_URL)."""
    from backend.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at {settings.resolved_database_url} is at {revision}")


class WorkerSupervisor:
    """Keeps one local process (the worker, the reaper) alive: restarts it, with a pause, if
    it dies, so a crashed or OOM-killed worker comes back without the user noticing."""

    def __init__(self, command: list[str], env: dict[str, str], name: str = "worker") -> None:
        self.command = command
        self.env = env
        self.name = name
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"{name}-supervisor", daemon=True)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._process = subprocess.Popen(
                self.command, env=self.env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent
            )
            code = self._process.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            typer.echo(f"local {self.name} exited with code {code}; restarting in 2 s", err=True)
            self._stopping.wait(2.0)

    def stop(self) -> None:
        self._stopping.set()
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    worker: Annotated[
        bool, typer.Option(help="In local mode, also run a supervised worker process.")
    ] = True,
    reaper: Annotated[
        bool,
        typer.Option(
            help="Also run the reaper (re-queues runs of dead workers, re-sends lost ones)."
        ),
    ] = True,
    stale_after: Annotated[
        float, typer.Option(min=1, help="Reaper: seconds without heartbeat before a run is lost.")
    ] = 60.0,
) -> None:
    """Run the API and the studio UI (plus, in local mode, the embedded broker and a worker)."""
    import uvicorn

    from backend.broker import EmbeddedBroker
    from backend.db.migrate import upgrade
    from backend.main import create_app

    settings = get_settings()
    if host is not None or port is not None:
        settings = Settings.model_validate(
            {**settings.model_dump(), "host": host or settings.host, "port": port or settings.port}
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)

    broker = EmbeddedBroker(settings.broker_socket) if settings.embedded_broker else None
    supervisors: list[WorkerSupervisor] = []
    env = {**os.environ, "UNISD_DATA_DIR": str(settings.data_dir.resolve())}
    cli = [sys.executable, "-m", "unisd_core.cli"]
    if broker is not None:
        broker.start()
        if worker:
            # The same Celery worker as in production, on the embedded broker; the reaper below
            # serves it, so it runs none of its own.
            command = [*cli, "worker", "--queues", "cpu,gpu", "--no-reap"]
            supervisors.append(WorkerSupervisor(command, env, "worker"))
    if reaper:
        # Pass often enough that a dead worker's run is back in the queue soon after it counts
        # as lost; a queued run missing from the broker for as long is re-sent.
        every = max(1.0, min(15.0, stale_after / 4))
        command = [
            *cli,
            "reap",
            "--loop",
            "--every",
            str(every),
            "--stale-after",
            str(stale_after),
            "--resend-after",
            str(stale_after),
        ]
        supervisors.append(WorkerSupervisor(command, env, "reaper"))
    for supervisor in supervisors:
        supervisor.start()
    app = create_app(settings)
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    typer.echo(f"UniSD Studio: http://{shown_host}:{settings.port}/  (API: /api/v1, docs: /docs)")
    exit_on_sigterm()
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        for supervisor in supervisors:
            supervisor.stop()
        if broker is not None:
            time.sleep(0.1)
            broker.stop()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(db_app, name="db")
    admin_cli.register(app)  # unisd users ..., unisd tokens ...
