"""Helpers for tests that start real processes: free ports, environments, a live stack."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
PG_URL = os.environ.get(
    "UNISD_TEST_PG_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("UNISD_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def unavailable(reason: str) -> None:
    """In CI a missing service is a failure (make test starts them); elsewhere a skip."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNISD_")}
    env.update(
        UNISD_DATA_DIR=str(data_dir),
        UNISD_AUTH="off",
        UNISD_CACHE_DIR=str(data_dir / "cache"),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Stack:
    """Processes started for one test (server, workers), stopped and logged at teardown."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.base_url = ""

    def start(self, args: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        log_path = self.data_dir / f"{name}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "unisd_core.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,
        )
        self.processes.append((process, log_path))
        return process

    def serve(self, env: dict[str, str], *extra: str) -> str:
        port = free_port()
        self.start(["serve", "--port", str(port), *extra], env, "serve")
        self.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/api/v1/health", timeout=1).status_code == 200:
                    return self.base_url
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"server did not come up:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for _, p in self.processes
        )

    def stop(self) -> None:
        for process, _ in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _ in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def wait_for_status(
    base_url: str, run_id: int, wanted: set[str], timeout_s: float = 180
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{base_url}/api/v1/runs/{run_id}", timeout=5).json()
        if body["status"] in wanted:
            return body
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not reach {wanted}; last: {body}")
