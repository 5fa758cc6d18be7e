"""Benchmark: the studio's tracking API against a local MLflow tracking server, same workload.

Workload (one client, sequential HTTP calls, both servers on this machine):

1. create 200 runs;
2. ingest 1,000,000 metric points (one key, 5,000 steps per run) in batches of 1,000;
3. fetch the full 5,000-point history of one key for one run;
4. fetch one key for 20 runs in one call (ours downsampled to 500 points per run keeping
   extremes; MLflow's bulk-interval endpoint with max_results=500);
5. list the 200 runs with their latest metric (MLflow: runs/search);
6. ours only: list 1,000 runs with latest metrics, on SQLite and on PostgreSQL (target p95
   under 150 ms).

All servers run at once and take turns: each run's batches (back to back, as a logging script
sends them) and each timed query (three calls in a row, all timed: see `BURST`) go to every
server before the next, so on a shared machine a load spike hits all of them alike (run one
after the other, the ratios mostly measured whose turn the spike fell on).

Prints ingest points/s and query latency p50/p95 for both and the ratios (ours / MLflow for
latency, ours / MLflow for throughput), with the machine's load average. Ingest is shown twice:
with the client's building and JSON encoding of each batch counted (the headline figure, as a
script logging over HTTP sees it) and, in brackets, the HTTP round trips alone (the servers'
share; the client's encoding costs about the same for both and dilutes the ratio). Both
clients encode with orjson: the standard library's `json.dumps` took 4.2 ms per 1,000-point
batch here (orjson 0.5 ms), more than the studio takes to store one. They decode the timed
queries' answers with orjson too (httpx's `response.json()` is the standard library's parser,
which took 0.8 ms for the 160 KB 200-run list here, orjson 0.3 ms: a client's cost).

The studio runs with its default settings: on PostgreSQL a metric batch is acknowledged before
its WAL reaches the disk (`UNISD_INGEST_DURABLE_COMMIT`, off by default; SQLite in WAL mode with
synchronous=NORMAL makes the same trade); `--durable-commit` measures it waiting for the disk.

MLflow runs from its own virtualenv (default /tmp/mlflow-venv; `--mlflow` to change; it is not a
dependency of the studio). Without it the baseline is a plain SQLAlchemy-ORM tracker run in
process (see `PlainOrm`), and the output says so.

    python bench/api_vs_mlflow.py [--scale 0.2] [--mlflow /path/to/venv/bin/mlflow] [--pg URL]
        [--durable-commit]

MLflow's virtualenv: `python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install
'mlflow==3.17.*'`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson

REPO = Path(__file__).resolve().parents[1]
KEY = "loss/total"
JSON = {"content-type": "application/json"}
BATCH = 1000
DEFAULT_PG = os.environ.get(
    "UNISD_TEST_PG_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def answer(response: httpx.Response) -> Any:
    """A timed query's decoded answer (orjson: see the module's docstring); errors raise."""
    response.raise_for_status()
    return orjson.loads(response.content)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of latency samples in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


#: Calls per server per turn, each timed. This VM wakes an idle process slowly: after another
#: server's turn even `GET /health` took 6.8 ms instead of 1.5 ms back to back, a cost that
#: swamps a fast server's latency and is not the server's. A turn's first call pays it, the
#: others show the server's own latency; p50 reads the latter, p95 keeps the former.
BURST = 3


def timed_interleaved(
    calls: dict[str, Callable[[], Any]], repeats: int, burst: int = BURST
) -> dict[str, tuple[float, float]]:
    """p50/p95 latency (ms) of each server's call, the servers taking turns (after one warm-up
    call each), `burst` timed calls per turn: on a shared machine every server sees the same
    load."""
    samples: dict[str, list[float]] = {label: [] for label in calls}
    for fn in calls.values():
        fn()
    for _ in range(repeats):
        for label, fn in calls.items():
            for _ in range(burst):
                start = time.perf_counter()
                fn()
                samples[label].append((time.perf_counter() - start) * 1000)
    return {label: percentiles(values) for label, values in samples.items()}


# --------------------------------------------------------------------------- the studio


class Studio:
    def __init__(self, database_url: str, data_dir: Path, *, durable_commit: bool = False) -> None:
        from backend.auth import service as auth
        from backend.db.migrate import upgrade
        from backend.db.session import session_scope

        upgrade(database_url)
        self.database_url = database_url
        with session_scope(database_url) as session:
            user = auth.create_user(session, f"bench-{uuid.uuid4().hex[:6]}@example.org", "admin")
            _, token = auth.create_token(session, user, name="bench")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("UNISD_")}
        env.update(
            UNISD_DATABASE_URL=database_url,
            UNISD_DATA_DIR=str(data_dir),
            UNISD_BROKER_URL="memory://",
            UNISD_AUTH="on",
            UNISD_INGEST_DURABLE_COMMIT=str(durable_commit).lower(),
            PYTHONPATH=str(REPO),
        )
        code = (
            "import uvicorn; from backend.main import create_app; "
            f"uvicorn.run(create_app(with_ui=False), host='127.0.0.1', port={port}, "
            "log_level='warning')"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], env=env, cwd=REPO, start_new_session=True
        )
        self.base = f"http://127.0.0.1:{port}"
        wait_up(f"{self.base}/api/v1/health", self.process)
        self.http = httpx.Client(
            base_url=f"{self.base}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )

    def create_run(self, i: int) -> int:
        body = {"name": f"bench-{i}", "train": {"max_steps": 5000, "seed": i}}
        response = self.http.post("/runs", json=body)
        response.raise_for_status()
        return int(response.json()["id"])

    def batch(self, run_id: int, start: int, n: int) -> tuple[str, bytes]:
        now = time.time()
        points = [
            {"key": KEY, "step": s, "value": 1.0 / (1 + s), "wall_time": now}
            for s in range(start, start + n)
        ]
        return f"/runs/{run_id}/metrics", orjson.dumps({"points": points})

    def send(self, batch: tuple[str, bytes]) -> None:
        path, body = batch
        self.http.post(path, content=body, headers=JSON).raise_for_status()

    def history(self, run_id: int) -> int:
        response = self.http.get(f"/runs/{run_id}/metrics", params={"keys": KEY})
        return len(answer(response)["metrics"][KEY])

    def many(self, run_ids: list[int]) -> int:
        params = {"run_ids": ",".join(map(str, run_ids)), "keys": KEY, "max_points": 500}
        response = self.http.get("/metrics/series", params=params)
        return sum(len(by_key[KEY]) for by_key in answer(response)["runs"].values())

    def run_list(self, limit: int) -> int:
        params = {"limit": limit, "latest": KEY, "include_config": "false"}
        response = self.http.get("/runs", params=params)
        return len(answer(response)["items"])

    def close(self) -> None:
        self.http.close()
        stop(self.process)


# --------------------------------------------------------------------------- MLflow


class MLflow:
    def __init__(self, mlflow_bin: str, data_dir: Path) -> None:
        port = free_port()
        store = f"sqlite:///{data_dir / 'mlflow.db'}"
        self.process = subprocess.Popen(
            [
                mlflow_bin,
                "server",
                "--backend-store-uri",
                store,
                "--default-artifact-root",
                str(data_dir / "mlartifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=data_dir,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=(data_dir / "mlflow.log").open("wb"),
        )
        self.base = f"http://127.0.0.1:{port}"
        wait_up(f"{self.base}/health", self.process, timeout=180)
        self.http = httpx.Client(base_url=self.base, timeout=120)
        response = self.http.post(
            "/api/2.0/mlflow/experiments/create", json={"name": f"bench-{uuid.uuid4().hex[:6]}"}
        )
        response.raise_for_status()
        self.experiment = response.json()["experiment_id"]

    def create_run(self, i: int) -> str:
        response = self.http.post(
            "/api/2.0/mlflow/runs/create",
            json={
                "experiment_id": self.experiment,
                "run_name": f"bench-{i}",
                "start_time": int(time.time() * 1000),
            },
        )
        response.raise_for_status()
        return str(response.json()["run"]["info"]["run_id"])

    def batch(self, run_id: str, start: int, n: int) -> tuple[str, bytes]:
        now = int(time.time() * 1000)
        metrics = [
            {"key": KEY, "value": 1.0 / (1 + s), "timestamp": now, "step": s}
            for s in range(start, start + n)
        ]
        body = orjson.dumps({"run_id": run_id, "metrics": metrics})
        return "/api/2.0/mlflow/runs/log-batch", body

    def send(self, batch: tuple[str, bytes]) -> None:
        path, body = batch
        self.http.post(path, content=body, headers=JSON).raise_for_status()

    def history(self, run_id: str) -> int:
        response = self.http.get(
            "/api/2.0/mlflow/metrics/get-history",
            params={"run_id": run_id, "metric_key": KEY, "max_results": 25000},
        )
        return len(answer(response)["metrics"])

    def many(self, run_ids: list[str]) -> int:
        response = self.http.get(
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
            params=[("run_ids", r) for r in run_ids] + [("metric_key", KEY), ("max_results", 500)],
        )
        return len(answer(response)["metrics"])

    def run_list(self, limit: int) -> int:
        response = self.http.post(
            "/api/2.0/mlflow/runs/search",
            json={"experiment_ids": [self.experiment], "max_results": limit},
        )
        return len(answer(response)["runs"])

    def close(self) -> None:
        self.http.close()
        stop(self.process)


# --------------------------------------------------------------------------- ORM baseline


class PlainOrm:
    """What a hand-rolled tracker does with the SQLAlchemy ORM, in process (no HTTP at all):
    one ORM object per point, a query per run for latest values, full series (no downsampling).
    Used when MLflow is not installed; it flatters the baseline (no HTTP, no auth, no JSON
    validation), so the ratios are conservative."""

    def __init__(self, database_url: str) -> None:
        from backend.db.migrate import upgrade
        from backend.db.session import make_engine

        upgrade(database_url)
        self.engine = make_engine(database_url)

    def session(self) -> Any:
        from sqlalchemy.orm import Session

        return Session(self.engine)

    def create_run(self, i: int) -> int:
        from backend.db.models import Run

        with self.session() as session:
            run = Run(
                name=f"bench-{i}",
                status="queued",
                config={},
                config_hash="x",
                base_model="builtin:tiny-random",
                dataset="scienceqa",
                seed=i,
            )
            session.add(run)
            session.commit()
            return int(run.id)

    def batch(self, run_id: int, start: int, n: int) -> tuple[int, list[tuple[int, float]]]:
        return run_id, [(s, 1.0 / (1 + s)) for s in range(start, start + n)]

    def send(self, batch: tuple[int, list[tuple[int, float]]]) -> None:
        from backend.db.models import MetricPoint

        run_id, points = batch
        now = time.time()
        with self.session() as session:
            for step, value in points:
                session.add(
                    MetricPoint(run_id=run_id, key=KEY, step=step, value=value, wall_time=now)
                )
            session.commit()

    def _series(self, session: Any, run_id: int) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from backend.db.models import MetricPoint

        rows = session.scalars(
            select(MetricPoint)
            .where(MetricPoint.run_id == run_id, MetricPoint.key == KEY)
            .order_by(MetricPoint.step)
        )
        return [{"step": p.step, "value": p.value} for p in rows]

    def history(self, run_id: int) -> int:
        with self.session() as session:
            return len(json.loads(json.dumps(self._series(session, run_id))))

    def many(self, run_ids: list[int]) -> int:
        with self.session() as session:
            data = {rid: self._series(session, rid) for rid in run_ids}
            return sum(len(v) for v in json.loads(json.dumps(data)).values())

    def run_list(self, limit: int) -> int:
        from sqlalchemy import select

        from backend.db.models import MetricPoint, Run

        with self.session() as session:
            items = []
            for run in session.scalars(select(Run).order_by(Run.id.desc()).limit(limit)):
                last = session.scalars(
                    select(MetricPoint)
                    .where(MetricPoint.run_id == run.id, MetricPoint.key == KEY)
                    .order_by(MetricPoint.step.desc())
                    .limit(1)
                ).first()
                items.append({"id": run.id, "name": run.name, KEY: last.value if last else None})
            return len(json.loads(json.dumps(items)))

    def close(self) -> None:
        self.engine.dispose()


# --------------------------------------------------------------------------- the workload


def workload(
    servers: dict[str, Any], runs: int, points: int, repeats: int
) -> dict[str, dict[str, Any]]:
    """The workload on every server, interleaved: each batch and each timed query goes to the
    servers in turn, so a load spike on this (shared) machine hits all of them alike instead of
    whichever happened to run at that moment."""
    ids = {label: [server.create_run(i) for i in range(runs)] for label, server in servers.items()}
    per_run = points // runs
    # Per server: seconds spent building and JSON-encoding the batches (the client's share),
    # and seconds spent sending them until the server answered (the API's share).
    encode_s = dict.fromkeys(servers, 0.0)
    send_s = dict.fromkeys(servers, 0.0)
    # Turns of one run's history each: a server takes a run's batches back to back (the
    # throughput a logging script sees), then the next server takes the same run. Turns of one
    # batch handicapped the faster server: it idled through each of the other's long turns and
    # started every request cold (on a loaded machine, ~2x its back-to-back time).
    for index in range(runs):
        for label, server in servers.items():
            for first in range(0, per_run, BATCH):
                start = time.perf_counter()
                batch = server.batch(ids[label][index], first, min(BATCH, per_run - first))
                encoded = time.perf_counter()
                server.send(batch)
                encode_s[label] += encoded - start
                send_s[label] += time.perf_counter() - encoded
    for label, server in servers.items():
        assert server.history(ids[label][0]) == per_run, label
    history = timed_interleaved(
        {label: partial(server.history, ids[label][0]) for label, server in servers.items()},
        repeats,
    )
    twenty = timed_interleaved(
        {label: partial(server.many, ids[label][:20]) for label, server in servers.items()},
        repeats,
    )
    run_list = timed_interleaved(
        {label: partial(server.run_list, runs) for label, server in servers.items()}, repeats
    )
    return {
        label: {
            "ingest_points_per_s": per_run * runs / (encode_s[label] + send_s[label]),
            "sent_points_per_s": per_run * runs / send_s[label],
            "history": history[label],
            "twenty_runs": twenty[label],
            "run_list": run_list[label],
            "ids": ids[label],
        }
        for label in servers
    }


def thousand_runs(studios: dict[str, Studio], repeats: int) -> dict[str, tuple[float, float]]:
    """Top each studio's database up to 1,000 runs (written directly: creation is not what is
    timed), then time the 1,000-run list with latest metrics on each, interleaved."""
    from sqlalchemy import func, select

    from backend.db.models import Run
    from backend.db.repositories import insert_metric_points
    from backend.db.session import session_scope
    from backend.runs.service import run_from_config
    from unisd_core.config import RunConfig

    config = RunConfig.model_validate({"train": {"max_steps": 5000}})
    for studio in studios.values():
        with session_scope(studio.database_url) as session:
            existing = session.scalar(select(func.count()).select_from(Run)) or 0
            runs = [run_from_config(config, default_queue="cpu") for _ in range(existing, 1000)]
            session.add_all(runs)
            session.flush()
            now = time.time()
            insert_metric_points(
                session,
                [
                    {"run_id": r.id, "key": KEY, "step": s, "value": 1.0, "wall_time": now}
                    for r in runs
                    for s in range(3)
                ],
            )
        assert studio.run_list(1000) == 1000
    return timed_interleaved(
        {label: partial(studio.run_list, 1000) for label, studio in studios.items()}, repeats
    )


def pg_database(admin_url: str) -> tuple[str, Callable[[], None]] | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error: no PostgreSQL here
        print(f"PostgreSQL not reachable ({exc.__class__.__name__}); skipping it")
        return None
    name = f"unisd_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def fmt(pair: tuple[float, float] | None) -> str:
    return "-" if pair is None else f"{pair[0]:8.1f} / {pair[1]:8.1f}"


def print_row(label: str, r: dict[str, Any], thousand: tuple[float, float] | None) -> None:
    ingest = f"{r['ingest_points_per_s']:,.0f} ({r['sent_points_per_s']:,.0f})"
    print(
        f"{label:20} {ingest:>21} {fmt(r['history']):>19} "
        f"{fmt(r['twenty_runs']):>19} {fmt(r['run_list']):>19} {fmt(thousand):>19}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="Fraction of the 1M points.")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--mlflow", default="/tmp/mlflow-venv/bin/mlflow")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL admin URL ('' to skip).")
    parser.add_argument(
        "--durable-commit",
        action="store_true",
        help="PostgreSQL: acknowledge metric batches only once on disk (default: before).",
    )
    args = parser.parse_args()
    points = int(1_000_000 * args.scale)
    started = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="unisd-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        targets = [("studio/sqlite", f"sqlite:///{root / 'studio.db'}")]
        if args.pg:
            made = pg_database(args.pg)
            if made is not None:
                stack.callback(made[1])
                targets.append(("studio/postgresql", made[0]))
        studios: dict[str, Studio] = {}
        for label, url in targets:
            (root / label).mkdir(parents=True)
            studios[label] = Studio(url, root / label, durable_commit=args.durable_commit)
            stack.callback(studios[label].close)
        servers: dict[str, Any] = dict(studios)
        if shutil.which(args.mlflow) or Path(args.mlflow).exists():
            baseline = "mlflow/sqlite"
            servers[baseline] = MLflow(args.mlflow, root)
        else:
            print(f"MLflow not found at {args.mlflow}: baseline = plain SQLAlchemy ORM, in process")
            baseline = "orm/sqlite (baseline)"
            servers[baseline] = PlainOrm(f"sqlite:///{root / 'orm.db'}")
        stack.callback(servers[baseline].close)
        print(f"{', '.join(servers)}: {args.runs} runs, {points:,} points, interleaved ...")
        results = workload(servers, args.runs, points, args.repeats)
        lists = thousand_runs(studios, args.repeats)

    print()
    print(f"workload: {args.runs} runs, {points:,} points in batches of {BATCH}, one client")
    print(f"studio metric batches on PostgreSQL wait for the disk: {args.durable_commit}")
    print(
        f"load average before/after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs; {time.perf_counter() - started:.0f} s in all"
    )
    print(
        "ingest: points/s with the client's JSON encoding of each batch counted; in brackets, "
        "the batches' HTTP round trips only"
    )
    print("latency columns: p50 / p95 in ms")
    header = f"{'server':20} {'ingest pts/s':>21} {'1-key history':>19} {'20 runs, 1 key':>19} "
    print(header + f"{'run list+latest':>19} {'1000-run list':>19}")
    for label, r in results.items():
        print_row(label, r, lists.get(label))
    reference = results[baseline]
    print(
        f"\nratios vs {baseline} (ingest: ours / theirs, target >= 10; "
        "latency p50 and p95: ours / theirs, target <= 0.2)"
    )
    for label, r in results.items():
        if label == baseline:
            continue
        ingest = r["ingest_points_per_s"] / reference["ingest_points_per_s"]
        sent = r["sent_points_per_s"] / reference["sent_points_per_s"]
        cells = [
            f"{r[name][0] / reference[name][0]:.3f} / {r[name][1] / reference[name][1]:.3f}"
            for name in ("history", "twenty_runs", "run_list")
        ]
        print(
            f"{label:20} ingest {ingest:5.1f}x ({sent:4.1f}x sent only)   history {cells[0]}   "
            f"20 runs {cells[1]}   run list {cells[2]}"
        )
    for label, pair in lists.items():
        verdict = "OK" if pair[1] < 150 else "MISSED"
        print(f"{label}: 1,000-run list with latest metrics p95 {pair[1]:.1f} ms ({verdict}, <150)")


if __name__ == "__main__":
    main()
