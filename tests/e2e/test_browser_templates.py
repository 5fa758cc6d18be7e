"""The paper-table template in a real browser: queue it from the Ablation tab, let the stack's
worker train and evaluate every run, and read the paper's table on the Analysis tab.

Its own stack (embedded worker, tiny model); the helpers are the main browser test's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.test_browser import (
    FINISHED,
    open_studio,
    plot_traces,
    serve,
    shot,
    wait_inner_text,
    wait_text,
)
from tests.support import Stack, service_env

pytestmark = [pytest.mark.slow, pytest.mark.browser]

KEPT_METHODS = ("base", "sft")
KEPT_BENCHMARKS = ("scienceqa",)
#: Two runs (base once, sft for one seed), each trained 2 steps and evaluated on 2 items of
#: ScienceQA and GPQA: minutes on a loaded 2-core machine; the bound leaves room for a slow one.
SWEEP_DEADLINE_S = 1200


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    stack = Stack(tmp_path_factory.mktemp("studio-templates"))
    try:
        yield stack, serve(stack, service_env(stack.data_dir))
    finally:
        stack.stop()


def checkbox(page: Any, group: str, name: str) -> Any:
    """The checkbox of one choice of a CheckboxGroup (exact text: `sft` is not `sdft`)."""
    label = page.locator(f"#{group} label").filter(has_text=re.compile(rf"^\s*{name}\s*$"))
    return label.locator("input")


def keep_only(page: Any, group: str, kept: tuple[str, ...]) -> None:
    names = [t.strip() for t in page.locator(f"#{group} label").all_inner_texts()]
    assert set(kept) <= set(names), names
    for name in names:
        box = checkbox(page, group, name)
        if name in kept:
            box.check()
        else:
            box.uncheck()


def fill_number(page: Any, elem_id: str, value: str) -> None:
    field = page.locator(f"#{elem_id} input")
    field.fill(value)
    field.press("Tab")  # a number input sends its value when it loses focus


def sweep_runs(base_url: str, sweep_id: int) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"sweep_id": sweep_id, "limit": 100}
    return list(httpx.get(f"{base_url}/api/v1/runs", params=params, timeout=30).json()["items"])


def wait_for_sweep(base_url: str, sweep_id: int, stack: Stack) -> list[dict[str, Any]]:
    deadline = time.monotonic() + SWEEP_DEADLINE_S
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = sweep_runs(base_url, sweep_id)
        if runs and all(r["status"] in FINISHED for r in runs):
            return runs
        time.sleep(3)
    states = [(r["id"], r["status"]) for r in runs]
    raise AssertionError(f"sweep {sweep_id} unfinished: {states}\n{stack.logs()}")


def test_bad_template_input_shows_the_field_and_queues_nothing(
    studio: tuple[Stack, str], page: Any
) -> None:
    _stack, base_url = studio
    open_studio(page, base_url, "?tab=ablation", "#ablation-paper-queue")
    fill_number(page, "ablation-paper-seeds", "0")
    page.locator("#ablation-paper-preview").click()
    text = wait_text(page, "#ablation-paper-summary", "template_options.seeds")
    assert "Traceback" not in text
    page.locator("#ablation-paper-queue").click()
    status = wait_text(page, "#ablation-paper-status", "Not queued")
    assert "template_options.seeds" in status and "Traceback" not in status
    sweeps = httpx.get(f"{base_url}/api/v1/sweeps", timeout=30).json()
    items = sweeps["items"] if isinstance(sweeps, dict) else sweeps
    assert not [s for s in items if s.get("template")]


@pytest.mark.timeout(SWEEP_DEADLINE_S + 600)
def test_queue_a_paper_table_and_read_it_on_the_analysis_tab(
    studio: tuple[Stack, str], page: Any
) -> None:
    stack, base_url = studio
    open_studio(page, base_url, "?tab=ablation", "#ablation-paper-queue")
    model = page.locator("#ablation-paper-model input")
    model.fill("builtin:tiny-random")
    model.press("Enter")
    fill_number(page, "ablation-paper-seeds", "1")
    keep_only(page, "ablation-paper-methods", KEPT_METHODS)
    keep_only(page, "ablation-paper-benchmarks", KEPT_BENCHMARKS)
    fill_number(page, "ablation-paper-max-steps", "2")
    fill_number(page, "ablation-paper-max-eval", "2")
    page.locator("#ablation-paper-preview").click()
    preview = wait_text(page, "#ablation-paper-summary", "2 runs")
    assert "gpqa (OOD)" in preview and "GPU-hours" in preview, preview
    page.locator("#ablation-paper-queue").click()
    status = wait_text(page, "#ablation-paper-status", re.compile(r"Sweep \d+ queued"))
    shot(page, "ablation-paper-table")
    found = re.search(r"Sweep (\d+) queued with (\d+) runs\. Analysis: \?sweep=(\d+)", status)
    assert found is not None, status
    sweep_id = int(found.group(1))
    assert int(found.group(2)) == 2 and int(found.group(3)) == sweep_id

    sweep = httpx.get(f"{base_url}/api/v1/sweeps/{sweep_id}", timeout=30).json()
    assert sweep["template"] == "paper-table", sweep
    options = sweep["template_options"]
    assert options["model"] == "builtin:tiny-random" and options["methods"] == list(KEPT_METHODS)
    assert options["benchmarks"] == list(KEPT_BENCHMARKS) and options["seeds"] == 1
    assert (options["max_steps"], options["max_eval_examples"]) == (2, 2)

    runs = wait_for_sweep(base_url, sweep_id, stack)
    failed = {r["id"]: r.get("error") for r in runs if r["status"] != "succeeded"}
    assert not failed, f"{failed}\n{stack.logs()}"

    open_studio(page, base_url, f"?sweep={sweep_id}", "#analysis-note")
    wait_text(page, "#analysis-note", "paper table")
    wait_inner_text(page, "#analysis-paper-table", "gpqa (OOD)")
    table = str(page.locator("#analysis-paper-table").inner_text())
    assert "scienceqa" in table, table
    rows = {line.split()[0] for line in table.splitlines() if line.strip()}
    assert set(KEPT_METHODS) <= rows, table
    # one seed: cells are plain percentages, without an interval
    assert re.search(r"\b\d{1,3}\.\d\b", table) and "±" not in table, table
    wait_text(page, "#analysis-paper-findings", re.compile("holds|contradicted|unresolved"))
    plot_traces(page, "analysis-paper-gains")
    plot_traces(page, "analysis-paper-forest")
    # exports follow the figures: the table as CSV, the figures as PNG (or a note and HTML)
    # (the file list shows a name's stem and extension apart: find files by their links)
    page.locator('#analysis-exports a[download="paper_table.csv"]').wait_for()
    exported = page.evaluate(
        "() => [...document.querySelectorAll('#analysis-exports a[download]')]"
        ".map((a) => a.getAttribute('download'))"
    )
    note = str(page.locator("#analysis-export-note").inner_text())
    assert "paper_gains.html" in exported, exported
    assert "paper_gains.png" in exported or "PNG export failed" in note, (exported, note)
    shot(page, "analysis-paper-table")
