"""Render time of the Compare tab in a real browser: 50 runs x 5,000 points vs 5 runs x 500 points.

Starts the real service (no worker, so the runs stay queued), gives each run a synthetic
`loss/total` curve, opens `/?compare=<ids>` in Debian Chromium and times navigation until the
curves figure holds one trace per run. Prints both times and their ratio (target: under 3x,
thanks to server-side downsampling via `max_points` plus the UI's own cap).

    .venv/bin/python bench/ui_render.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import Stack, free_port, service_env

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


def curve(run_index: int, points: int) -> list[dict[str, Any]]:
    start = time.time() - points
    return [
        {
            "key": "loss/total",
            "step": step,
            "value": 3.0 * math.exp(-step / (points / 3)) + 0.05 * math.sin(step + run_index),
            "wall_time": start + step,
        }
        for step in range(1, points + 1)
    ]


def ingest(base_url: str, data_dir: Path, run_id: int, rows: list[dict[str, Any]]) -> None:
    """Through `POST /runs/{id}/metrics` when the API has it, else straight into the database."""
    response = httpx.post(
        f"{base_url}/api/v1/runs/{run_id}/metrics", json={"points": rows}, timeout=120
    )
    if response.is_success:
        return
    from sqlalchemy import create_engine, insert

    from backend.db.models import MetricPoint

    engine = create_engine(f"sqlite:///{data_dir / 'unisd.db'}")
    with engine.begin() as conn:
        conn.execute(insert(MetricPoint), [{"run_id": run_id, **row} for row in rows])
    engine.dispose()


def serve(stack: Stack, env: dict[str, str], deadline_s: float = 300) -> str:
    port = free_port()
    stack.start(["serve", "--port", str(port), "--no-worker"], env, "serve")
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                return base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server did not come up:\n{stack.logs()}")


def seed_runs(base_url: str, data_dir: Path, runs: int, points: int) -> list[int]:
    ids = []
    for index in range(runs):
        body = {"preset": "sft", "name": f"bench{index}", "train": {"max_steps": points}}
        response = httpx.post(f"{base_url}/api/v1/runs", json=body, timeout=30)
        response.raise_for_status()
        ids.append(int(response.json()["id"]))
        ingest(base_url, data_dir, ids[-1], curve(index, points))
    return ids


def render_seconds(browser: Any, base_url: str, ids: list[int]) -> float:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(f"{base_url}/?compare={','.join(map(str, ids))}", wait_until="load")
    page.wait_for_function(
        "(n) => { const p = document.querySelector('#compare-curves .js-plotly-plot');"
        " return p && p.data && p.data.length === n; }",
        arg=len(ids),
        timeout=300_000,
    )
    elapsed = time.perf_counter() - started
    context.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp))
        try:
            base_url = serve(stack, service_env(Path(tmp)))
            small = seed_runs(base_url, Path(tmp), 5, 500)
            large = seed_runs(base_url, Path(tmp), 50, 5000)
            executable = shutil.which("chromium") or shutil.which("chromium-browser")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                render_seconds(browser, base_url, small)  # warm caches and plotly.js
                small_s = [render_seconds(browser, base_url, small) for _ in range(args.repeats)]
                large_s = [render_seconds(browser, base_url, large) for _ in range(args.repeats)]
                browser.close()
        finally:
            stack.stop()
    result = {
        "small": "5 runs x 500 points",
        "large": "50 runs x 5,000 points",
        "small_s": round(statistics.median(small_s), 3),
        "large_s": round(statistics.median(large_s), 3),
        "ratio": round(statistics.median(large_s) / statistics.median(small_s), 2),
        "target_ratio": 3.0,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
