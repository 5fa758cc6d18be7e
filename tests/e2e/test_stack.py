"""The whole product as a user runs it: server, broker, worker processes, HTTP, real training."""

from __future__ import annotations

import signal
import time

import httpx
import psutil
import pytest

from tests.support import Stack, service_env, wait_for_status

#: Evaluation stays on here (the product's default), on few items with a short budget.
QUICK_EVAL = {"max_eval_examples": 4, "eval_max_new_tokens": 8, "max_prompt_length": 256}


def submit_and_finish(base_url: str) -> None:
    created = httpx.post(
        f"{base_url}/api/v1/runs",
        json={"preset": "sft", "train": {"max_steps": 3}, "data": QUICK_EVAL},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    run = wait_for_status(base_url, created.json()["id"], {"succeeded", "failed", "cancelled"})
    assert run["status"] == "succeeded", run
    metrics = httpx.get(
        f"{base_url}/api/v1/runs/{run['id']}/metrics",
        params={"keys": "loss/total,train/lr,eval/scienceqa/accuracy"},
    ).json()["metrics"]
    assert [p["step"] for p in metrics["loss/total"]] == [1, 2, 3]
    assert all(p["value"] > 0 for p in metrics["loss/total"])
    assert len(metrics["train/lr"]) == 3
    assert [p["step"] for p in metrics["eval/scienceqa/accuracy"]] == [3]
    evaluations = httpx.get(f"{base_url}/api/v1/runs/{run['id']}/evaluations").json()
    scores = {(e["benchmark"], e["metric"]): e for e in evaluations}
    assert {"scienceqa", "gpqa"} == {benchmark for benchmark, _ in scores}
    assert scores[("scienceqa", "accuracy")]["n"] == 4
    artifacts = httpx.get(f"{base_url}/api/v1/runs/{run['id']}/artifacts").json()
    assert "eval/report.json" in {a["name"] for a in artifacts}
    report = httpx.get(f"{base_url}/api/v1/runs/{run['id']}/artifacts/eval/report.json")
    assert report.status_code == 200 and "scienceqa" in report.json()["metrics"]


@pytest.mark.slow
def test_embedded_default_serves_trains_and_reports(stack: Stack) -> None:
    """`unisd serve` alone: SQLite, embedded broker and a supervised worker (what make run does)."""
    base_url = stack.serve(service_env(stack.data_dir))
    submit_and_finish(base_url)
    assert (stack.data_dir / "broker" / "appendonly.aof").exists()


@pytest.mark.slow
@pytest.mark.redis
def test_real_redis_and_a_separate_worker(stack: Stack, redis_broker_url: str) -> None:
    env = service_env(stack.data_dir, UNISD_BROKER_URL=redis_broker_url)
    base_url = stack.serve(env)
    stack.start(["worker", "--queues", "cpu"], env, "worker")
    submit_and_finish(base_url)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_serve_takes_its_children_with_it(stack: Stack, sig: signal.Signals) -> None:
    """Stopping (or killing) `unisd serve` leaves no orphaned broker, worker or reaper behind."""
    stack.serve(service_env(stack.data_dir))
    serve = stack.processes[0][0]
    deadline = time.monotonic() + 60
    children: list[psutil.Process] = []
    while time.monotonic() < deadline and len(children) < 3:  # broker, worker, reaper
        children = psutil.Process(serve.pid).children()
        time.sleep(0.2)
    assert len(children) >= 3, [c.cmdline() for c in children]
    serve.send_signal(sig)
    serve.wait(timeout=60)
    _, alive = psutil.wait_procs(children, timeout=60)
    assert alive == [], [p.cmdline() for p in alive]
