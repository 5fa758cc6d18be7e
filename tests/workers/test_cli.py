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


@pytest.mark.parametrize(
    ("preset", "concurrency", "on_gpu", "wanted"),
    [
        ({}, 1, False, {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "8"}),
        ({}, 3, False, {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "2"}),
        ({}, 16, False, {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}),
        ({}, 1, True, {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": None}),
        (
            {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "5"},
            1,
            False,
            {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "5"},
        ),
    ],
)
def test_cpu_thread_policy_shares_the_cores_and_respects_the_user(
    monkeypatch: pytest.MonkeyPatch,
    preset: dict[str, str],
    concurrency: int,
    on_gpu: bool,
    wanted: dict[str, str | None],
) -> None:
    import os

    from workers.cli import _cpu_thread_policy

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    for name in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in preset.items():
        monkeypatch.setenv(name, value)
    _cpu_thread_policy(concurrency, on_gpu=on_gpu)
    assert {name: os.environ.get(name) for name in wanted} == wanted
