"""What the queue and the database cost a run, on the embedded default or a given broker.

1. Submit to first metric: `unisd serve` (broker + supervised worker) in a temporary data dir;
   each run is POSTed and timed to its claim (queue latency) and to its first metric point
   (claim -> first point = model load + first step). The first run also pays the worker's lazy
   import of torch and the trainer, so it is reported apart from the warm ones.
2. Sink overhead: the same 3-step tiny run in this process with the JSONL sink and with the
   database sink (SQLite, WAL); the time spent inside each sink (including its final flush) is
   divided by the time of the steps themselves.

    python bench/queue_overhead.py                  # embedded broker, 3 runs, 3 steps
    python bench/queue_overhead.py --runs 5 --steps 3 --broker-url redis://127.0.0.1:6379/15

Prints ratios and seconds; nothing here is asserted (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY_SFT: dict[str, Any] = {"preset": "sft", "model": {"name_or_path": "builtin:tiny-random"}}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(data_dir: Path, broker_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNISD_")}
    env.update(
        UNISD_DATA_DIR=str(data_dir),
        UNISD_AUTH="off",
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
    )
    if broker_url:
        env["UNISD_BROKER_URL"] = broker_url
    return env


def wait_for(test: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.02)
    raise TimeoutError(what)


def submit_to_first_metric(runs: int, steps: int, broker_url: str | None) -> list[dict[str, float]]:
    from sqlalchemy import func, select

    from backend.db.models import MetricPoint, Run
    from backend.db.session import session_scope

    timings: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        env = service_env(data_dir, broker_url)
        if broker_url:  # a separate worker, as in production
            worker_cmd = [sys.executable, "-m", "unisd_core.cli", "worker", "--queues", "cpu"]
            extra = [subprocess.Popen([*worker_cmd, "--no-reap"], env=env, cwd=tmp)]
        else:
            extra = []
        log = (data_dir / "serve.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "unisd_core.cli", "serve", "--port", str(port)],
            env=env,
            cwd=tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}/api/v1"
        url = f"sqlite:///{data_dir / 'unisd.db'}"
        try:

            def healthy() -> bool:
                try:
                    return httpx.get(f"{base}/health", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(healthy, 120, "server health")
            time.sleep(5)  # let the worker finish starting; its readiness is not what we time
            for _ in range(runs):
                body = {**TINY_SFT, "train": {"max_steps": steps, "batch_size": 1}}
                sent = time.time()
                run_id = httpx.post(f"{base}/runs", json=body, timeout=10).json()["id"]

                def first_point(run_id: int = run_id) -> bool:
                    with session_scope(url) as session:
                        count = session.scalar(
                            select(func.count()).where(MetricPoint.run_id == run_id)
                        )
                    return bool(count)

                wait_for(first_point, 300, f"first metric of run {run_id}")
                seen = time.time()
                with session_scope(url) as session:
                    run = session.get(Run, run_id)
                    assert run is not None and run.started_at is not None
                    claimed = run.started_at.timestamp()
                    step_s = session.scalar(
                        select(MetricPoint.value).where(
                            MetricPoint.run_id == run_id,
                            MetricPoint.key == "sys/step_s",
                            MetricPoint.step == 1,
                        )
                    )
                timings.append(
                    {
                        "submit_to_claim_s": claimed - sent,
                        "claim_to_first_point_s": seen - claimed,
                        "first_step_s": float(step_s or 0.0),
                        "submit_to_first_point_s": seen - sent,
                    }
                )
                wait_for(
                    lambda run_id=run_id: _finished(url, run_id), 300, f"run {run_id} to finish"
                )
        finally:
            for process in [server, *extra]:
                process.terminate()
            for process in [server, *extra]:
                process.wait(timeout=60)
    return timings


def _finished(url: str, run_id: int) -> bool:
    from backend.db.models import Run
    from backend.db.session import session_scope

    with session_scope(url) as session:
        run = session.get(Run, run_id)
        return run is not None and run.status in ("succeeded", "failed", "cancelled")


class TimedSink:
    """Wraps a sink and adds up the time spent inside it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.step_seconds = 0.0

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        self.step_seconds += float(metrics.get("sys/step_s", 0.0))
        started = time.perf_counter()
        self.inner(step, metrics)
        self.seconds += time.perf_counter() - started

    def finish(self) -> None:
        flush = getattr(self.inner, "flush", None)
        if flush is not None:
            started = time.perf_counter()
            flush()
            self.seconds += time.perf_counter() - started


def sink_overhead(steps: int, repeats: int) -> dict[str, float]:
    import torch

    from backend.db.migrate import upgrade
    from backend.db.models import Run
    from backend.db.session import session_scope
    from unisd_core.callbacks import JsonlSink
    from unisd_core.config import RunConfig
    from unisd_core.trainer import train
    from workers.heartbeat import Heartbeat
    from workers.sinks import DbMetricSink

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    config = RunConfig.model_validate({**TINY_SFT, "train": {"max_steps": steps, "batch_size": 1}})
    results: dict[str, list[float]] = {"jsonl": [], "db": []}
    step_times: dict[str, list[float]] = {"jsonl": [], "db": []}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        train(config, lambda step, metrics: None)  # warm-up: imports, caches, first allocation
        for repeat in range(repeats):
            for kind in ("jsonl", "db"):
                if kind == "jsonl":
                    inner: Any = JsonlSink(Path(tmp) / f"metrics-{repeat}.jsonl")
                else:
                    with session_scope(url) as session:
                        run = Run(
                            status="running",
                            config=config.model_dump(mode="json"),
                            config_hash=config.config_hash(),
                            base_model=config.model.name_or_path,
                            dataset=config.data.benchmark,
                            seed=config.train.seed,
                            attempt=1,
                        )
                        session.add(run)
                        session.flush()
                        run_id = run.id
                    # As in the worker: buffered on the step path, flushed by the heartbeat.
                    inner = DbMetricSink(url, run_id, steps, attempt=1, background=True)
                sink = TimedSink(inner)
                if kind == "db":
                    with Heartbeat(url, run_id, 1, on_tick=[inner.flush_if_due]):
                        train(config, sink)
                else:
                    train(config, sink)
                sink.finish()
                results[kind].append(sink.seconds / steps)
                step_times[kind].append(sink.step_seconds / steps)
    step_s = statistics.median(step_times["jsonl"] + step_times["db"])
    return {
        "step_s": step_s,
        "jsonl_sink_s_per_step": statistics.median(results["jsonl"]),
        "db_sink_s_per_step": statistics.median(results["db"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs submitted through the queue")
    parser.add_argument("--steps", type=int, default=3, help="steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the sink comparison")
    parser.add_argument("--broker-url", default=None, help="a Redis URL; default: embedded")
    parser.add_argument("--skip-queue", action="store_true", help="only the sink comparison")
    args = parser.parse_args()

    if not args.skip_queue:
        timings = submit_to_first_metric(args.runs, args.steps, args.broker_url)
        broker = args.broker_url or "embedded broker"
        print(f"submit -> first metric point ({broker}, {args.steps}-step tiny SFT runs)")
        for index, timing in enumerate(timings, start=1):
            label = "cold" if index == 1 else "warm"
            print(
                f"  run {index} ({label}): submit->claim {timing['submit_to_claim_s']:.3f} s, "
                f"claim->first point {timing['claim_to_first_point_s']:.2f} s "
                f"(first step {timing['first_step_s']:.2f} s), "
                f"total {timing['submit_to_first_point_s']:.2f} s"
            )
        warm = timings[1:] or timings
        print(
            f"  median warm submit->claim: "
            f"{statistics.median(t['submit_to_claim_s'] for t in warm):.3f} s; "
            f"median warm submit->first point: "
            f"{statistics.median(t['submit_to_first_point_s'] for t in warm):.2f} s"
        )

    sinks = sink_overhead(args.steps, args.repeats)
    step_s = sinks["step_s"]
    print(f"sink overhead ({args.steps}-step tiny SFT run, median of {args.repeats})")
    print(f"  step time: {step_s * 1000:.1f} ms")
    for kind in ("jsonl", "db"):
        per_step = sinks[f"{kind}_sink_s_per_step"]
        print(
            f"  {kind:5s} sink: {per_step * 1000:.2f} ms/step = {per_step / step_s:.2%} of a step"
        )
    ratio = sinks["db_sink_s_per_step"] / max(sinks["jsonl_sink_s_per_step"], 1e-9)
    print(f"  db sink / jsonl sink: {ratio:.1f}x")


if __name__ == "__main__":
    main()
