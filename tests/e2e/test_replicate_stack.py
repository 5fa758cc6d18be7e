"""`unisd replicate` against a running server: the whole paper-table template through a worker."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import Stack, service_env
from unisd_core.templates import PAPER_METHODS


def unisd(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unisd_core.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_replicate_queues_the_template_and_reports_from_the_sweep(stack: Stack) -> None:
    env = service_env(stack.data_dir)
    base_url = stack.serve(env)
    queued = unisd(
        "replicate", "--api", base_url, "--model", "builtin:tiny-random", "--seeds", "1",
        "--max-steps", "2", "--max-eval-examples", "2", "--benchmarks", "scienceqa",
        env=env, cwd=stack.data_dir,
    )  # fmt: skip
    assert queued.returncode == 0, queued.stderr + queued.stdout
    assert f"{len(PAPER_METHODS)} runs" in queued.stdout
    sweep_id = int(queued.stdout.split("queued sweep ")[1].split(":")[0])

    deadline = time.monotonic() + 900
    sweep: dict[str, object] = {}
    while time.monotonic() < deadline:
        sweep = httpx.get(f"{base_url}/api/v1/sweeps/{sweep_id}", timeout=10).json()
        if sweep["status"] not in ("queued", "running"):
            break
        time.sleep(2)
    assert sweep["status"] == "succeeded", (sweep, stack.logs())

    analysis = httpx.get(f"{base_url}/api/v1/sweeps/{sweep_id}/analysis", timeout=30).json()
    paper = analysis["paper_table"]
    assert paper["methods"] == list(PAPER_METHODS)
    assert paper["columns"] == ["scienceqa", "gpqa", "overall"] and paper["ood"] == ["gpqa"]
    assert len(paper["findings"]) == 3
    scored = {(s["method"], s["benchmark"]) for s in paper["scores"] if s["mean"] is not None}
    assert ("unisd_star", "overall") in scored and ("base", "gpqa") in scored
    assert analysis["n_missing"] == 0

    report = stack.data_dir / "out" / "report.md"
    made = unisd(
        "replicate-report", f"sweep:{sweep_id}", "--api", base_url, "--output", str(report),
        env=env, cwd=stack.data_dir,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr + made.stdout
    text = report.read_text()
    assert "| method | scienceqa | gpqa (OOD) | overall |" in text
    assert "| unisd_star |" in text and "## The paper's findings at this scale" in text

    refused = unisd(
        "replicate", "--api", base_url, "--model", "builtin:nope", "--seeds", "1",
        env=env, cwd=stack.data_dir,
    )  # fmt: skip
    assert refused.returncode == 2 and "refused" in refused.stderr, refused.stderr
