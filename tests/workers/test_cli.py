"""`unisd worker` refuses what it cannot serve before it connects to anything."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from workers.cli import register


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queues", "cpu,tpu"], "unknown queue"),
        (["--queues", "gpu-x1"], "unknown queue"),
        (["--gpus", "0,1", "--queues", "gpu-x4"], "need 4 GPUs"),
        (["--gpus", "0,0"], "twice"),
        (["--gpus", "0", "--concurrency", "2"], "one run at a time"),
    ],
)
def test_the_worker_refuses_bad_placement(cli: typer.Typer, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["worker", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_one_reaper_pass_reports_what_it_did(
    cli: typer.Typer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.settings import get_settings

    monkeypatch.setenv("UNISD_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("UNISD_BROKER_URL", "redis://127.0.0.1:1/0")  # down: nothing to send
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["reap"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "ReapReport(requeued=[], failed=[], cancelled=[], resent=[])" in result.output
