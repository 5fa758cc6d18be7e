"""Helpers for the worker end-to-end tests: a Redis of their own, workers, runs, process trees."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from backend.db.models import MetricPoint, Run, RunEvent
from backend.db.session import session_scope
from tests.support import Stack, free_port, service_env

#: The fastest real run: SFT of the built-in tiny model, one example per step. These tests are
#: about workers, brokers and recovery, so the evaluation after training is off (test_stack.py
#: keeps it on).
TINY = {
    "preset": "sft",
    "model": {"name_or_path": "builtin:tiny-random"},
    "data": {"evaluate_after_training": False},
}


def env_for(stack: Stack, **extra: str) -> dict[str, str]:
    # One torch thread per process: the CI machine has two cores and several processes here.
    return service_env(stack.data_dir, OMP_NUM_THREADS="1", **extra)


def database_url(stack: Stack) -> str:
    return f"sqlite:///{stack.data_dir / 'unisd.db'}"


def start_worker(
    stack: Stack, env: dict[str, str], name: str, *args: str
) -> subprocess.Popen[bytes]:
    return start_workers(stack, env, [name], *args)[0]


def start_workers(
    stack: Stack, env: dict[str, str], names: list[str], *args: str
) -> list[subprocess.Popen[bytes]]:
    """Start the workers together (their imports overlap), then wait until each is ready."""
    processes = [stack.start(["worker", *args], env, name) for name in names]
    for name, process in zip(names, processes, strict=True):
        wait_for_log(stack.data_dir / f"{name}.log", " ready.", process)
    return processes


def wait_for_log(
    path: Path, needle: str, process: subprocess.Popen[bytes], timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.2)
    text = path.read_text(errors="replace") if path.exists() else ""
    raise AssertionError(f"{path.name} never said {needle!r}:\n{text[-3000:]}")


def submit(base_url: str, **config: Any) -> int:
    body = {**TINY, **config}
    response = httpx.post(f"{base_url}/api/v1/runs", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def row(url: str, run_id: int) -> Run:
    with session_scope(url) as session:
        run = session.get(Run, run_id)
        assert run is not None
        session.expunge(run)
        return run


def wait_until(url: str, run_id: int, test: Any, what: str, timeout_s: float = 180) -> Run:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = row(url, run_id)
        if test(run):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never got {what}; last: {row(url, run_id).__dict__}")


def steps(url: str, run_id: int, key: str = "loss/total") -> list[int]:
    with session_scope(url) as session:
        return list(
            session.scalars(
                select(MetricPoint.step)
                .where(MetricPoint.run_id == run_id, MetricPoint.key == key)
                .order_by(MetricPoint.step)
            )
        )


def events(url: str, run_id: int) -> list[str]:
    with session_scope(url) as session:
        return list(
            session.scalars(
                select(RunEvent.message).where(RunEvent.run_id == run_id).order_by(RunEvent.id)
            )
        )


def worker_pid(run: Run) -> int:
    """Workers are named `unisd-<queues>-<pid>@<host>`: the pid of their main process."""
    assert run.worker is not None
    return int(run.worker.split("@")[0].rsplit("-", 1)[1])


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (Linux /proc), parents first."""
    found = [pid]
    for current in found:
        for task in Path(f"/proc/{current}/task").glob("*"):
            listing = task / "children"
            children = listing.read_text().split() if listing.exists() else []
            found.extend(int(child) for child in children if int(child) not in found)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL a worker and everything it started, as a lost machine would."""
    for member in process_tree(pid):
        with contextlib.suppress(ProcessLookupError):  # already gone with its parent
            os.kill(member, signal.SIGKILL)


class OwnRedis:
    """A redis-server of this test alone (free loopback port, temp dir, no persistence), so the
    test can stop and restart it; the shared Redis on 6379 is never touched."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("own redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
