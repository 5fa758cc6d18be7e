"""A user in a real browser (Debian Chromium, playwright): submit a run, see it finish, plotted."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import httpx
import pytest

from tests.support import ARTIFACTS, Stack, service_env, unavailable, wait_for_status

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture
def page() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        unavailable("Debian chromium is not installed (make test installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


@pytest.mark.slow
@pytest.mark.browser
def test_submit_a_run_and_see_its_loss_curve(stack: Stack, page) -> None:  # type: ignore[no-untyped-def]
    base_url = stack.serve(service_env(stack.data_dir))
    page.goto(base_url + "/", wait_until="networkidle")
    steps = page.locator("#max-steps input")
    steps.fill("3")
    page.locator("#submit-run").click()
    status = page.locator("#submit-status")
    status.get_by_text(re.compile(r"Run \d+ queued")).wait_for(timeout=30_000)
    run_id = int(re.search(r"Run (\d+)", status.inner_text()).group(1))  # type: ignore[union-attr]

    run = wait_for_status(base_url, run_id, {"succeeded", "failed", "cancelled"})
    assert run["status"] == "succeeded", stack.logs()
    # The table refreshes itself and the selected run's curve is drawn with its three points.
    page.wait_for_function(
        "() => document.querySelector('#runs-table').innerText.includes('succeeded')",
        timeout=30_000,
    )
    plot = page.locator("#loss-plot .js-plotly-plot")
    plot.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => { const p = document.querySelector('#loss-plot .js-plotly-plot');"
        " return p && p.data && p.data.length > 0 && p.data[0].x.length === 3; }",
        timeout=30_000,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "walking-skeleton-run.png"), full_page=True)
    points = httpx.get(f"{base_url}/api/v1/runs/{run_id}/metrics", params={"keys": "loss/total"})
    assert len(points.json()["metrics"]["loss/total"]) == 3


@pytest.mark.slow
@pytest.mark.browser
def test_invalid_value_is_shown_and_nothing_is_submitted(stack: Stack, page) -> None:  # type: ignore[no-untyped-def]
    base_url = stack.serve(service_env(stack.data_dir))
    page.goto(base_url + "/", wait_until="networkidle")
    page.locator("#max-steps input").fill("-5")
    page.locator("#submit-run").click()
    page.locator("#submit-status").get_by_text("Not submitted").wait_for(timeout=30_000)
    assert "train.max_steps" in page.locator("#submit-status").inner_text()
    assert httpx.get(f"{base_url}/api/v1/runs").json()["total"] == 0
