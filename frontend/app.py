"""The studio UI: a Gradio Blocks app that reads and writes only through the REST API.

Each tab is built by `frontend.tabs.<tab>.build(studio)`, which returns its components; this module
only lays the tabs out and wires what crosses tabs (open a run, compare a selection, clone, links).
Links carry state in the query string: `?run=12`, `?compare=3,4` (with `&axis=time` for the
time axis), `?sweep=2`, `?tab=ablation`.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend.client import ApiError, StudioClient
from frontend.context import Studio
from frontend.tabs import ablation, account, analysis, compare, new_run, run_detail, runs
from frontend.views import parse_axis, parse_ids

CONCURRENCY = 16
TABS = ("new", "runs", "run", "ablation", "compare", "analysis", "account")
#: Writes the selection into the address bar, so the page's URL can be shared as it is.
URL_JS = """
(value) => {
  const key = '%s';
  const ids = (Array.isArray(value) ? value : [value]).filter(Boolean)
    .map((v) => String(v).replace('#', '').split(' ')[0]);
  const url = new URL(window.location.href);
  ['run', 'compare', 'sweep', 'tab'].forEach((k) => url.searchParams.delete(k));
  // The x axis belongs to a comparison: a link to a run or a sweep must not carry it.
  if (key !== 'compare') url.searchParams.delete('axis');
  if (ids.length) url.searchParams.set(key, ids.join(','));
  window.history.replaceState(null, '', url);
  return value;
}
"""
#: The Compare tab's x axis joins its link; the step axis is the default and stays out of it.
AXIS_JS = """
(value) => {
  const url = new URL(window.location.href);
  if (value === 'time') url.searchParams.set('axis', 'time');
  else url.searchParams.delete('axis');
  window.history.replaceState(null, '', url);
  return value;
}
"""


def run_choices(studio: Studio, token: str | None) -> tuple[list[str], list[str]]:
    """(run labels, sweep labels) for the pickers of every tab."""
    client = studio.api(token)
    try:
        labels = runs.choices(client.list_runs())
    except ApiError:
        labels = []
    try:
        sweeps = [f"#{s.id} {s.name or ''}".strip() for s in client.list_sweeps()]
    except ApiError:
        sweeps = []
    return labels, sweeps


def team_mode(api_url: str) -> bool:
    """Accounts are on when the API refuses a request that carries no credentials."""
    try:
        StudioClient(api_url).me()
    except ApiError as exc:
        return exc.status in (401, 403)
    return False


def create_ui(api_url: str, token: str | None = None) -> gr.Blocks:
    studio = Studio(StudioClient(api_url, token))
    with gr.Blocks(title="UniSD Studio") as ui:
        studio.token = gr.State(None)
        gr.Markdown(
            "# UniSD Studio\nSelf-distillation runs: configure, launch, watch, ablate, "
            "compare and understand.",
            elem_id="header",
        )
        with gr.Tabs(selected="new", elem_id="tabs") as tabs:
            with gr.Tab("New run", id="new", elem_id="tab-new") as tab_new:
                new = new_run.build(studio)
            with gr.Tab("Runs", id="runs", elem_id="tab-runs"):
                table = runs.build(studio)
            with gr.Tab("Run detail", id="run", elem_id="tab-run") as tab_run:
                detail = run_detail.build(studio)
            with gr.Tab("Ablation", id="ablation", elem_id="tab-ablation"):
                design = ablation.build(studio)
            with gr.Tab("Compare", id="compare", elem_id="tab-compare") as tab_compare:
                comparison = compare.build(studio)
            with gr.Tab("Analysis", id="analysis", elem_id="tab-analysis") as tab_analysis:
                understand = analysis.build(studio)
            with gr.Tab("Account", id="account", elem_id="tab-account", visible=False) as tab_acc:
                acc = account.build(studio)

        pickers = [
            detail["select"],
            detail["other"],
            comparison["runs"],
            new["clone_from"],
            comparison["sweep"],
            understand["sweep"],
        ]

        def refresh_pickers(token_: str | None) -> list[Any]:
            labels, sweeps = run_choices(studio, token_)
            return [gr.Dropdown(choices=labels)] * 4 + [gr.Dropdown(choices=sweeps)] * 2

        def on_load(request: gr.Request) -> list[Any]:
            """Open the state a shared link names; show Account only when auth is on."""
            params = dict(request.query_params) if request else {}
            labels, sweeps = run_choices(studio, None)
            team = team_mode(studio.client.base_url)
            run_ids = parse_ids(params.get("run"))
            compare_ids = parse_ids(params.get("compare"))
            sweep_ids = parse_ids(params.get("sweep"))
            tab = params.get("tab") if params.get("tab") in TABS else "new"
            if run_ids:
                tab = "run"
            elif compare_ids:
                tab = "compare"
            elif sweep_ids:
                tab = "analysis"
            return [
                gr.Tabs(selected=tab),
                gr.Tab(visible=team),
                gr.Dropdown(choices=labels, value=f"#{run_ids[0]}" if run_ids else None),
                gr.Dropdown(choices=labels),
                gr.Dropdown(choices=labels, value=[f"#{i}" for i in compare_ids]),
                gr.Dropdown(choices=labels),
                gr.Dropdown(choices=sweeps),
                gr.Dropdown(choices=sweeps, value=f"#{sweep_ids[0]}" if sweep_ids else None),
                gr.Radio(value=parse_axis(params.get("axis"))) if compare_ids else gr.skip(),
            ]

        load_outputs = [tabs, tab_acc, *pickers, comparison["axis"]]
        ui.load(on_load, None, load_outputs).then(
            comparison["draw"], comparison["inputs"], comparison["outputs"]
        ).then(understand["run"], understand["inputs"], understand["outputs"]).then(
            understand["export"], understand["export_inputs"], understand["export_outputs"]
        )
        for tab in (tab_new, tab_run, tab_compare, tab_analysis):
            tab.select(refresh_pickers, [studio.token], pickers, show_progress="hidden")

        # Cross-tab wiring: open, compare, clone.
        def first_selected(chosen: list[str] | None) -> tuple[Any, Any]:
            picked = parse_ids(chosen)
            if not picked:
                return gr.skip(), gr.skip()
            return gr.Tabs(selected="run"), f"#{picked[0]}"

        def to_compare(chosen: list[str] | None) -> tuple[Any, Any]:
            picked = parse_ids(chosen)
            if not picked:
                return gr.skip(), gr.skip()
            return gr.Tabs(selected="compare"), gr.Dropdown(value=[f"#{i}" for i in picked])

        table["open"].click(first_selected, [table["selected"]], [tabs, detail["select"]])
        table["compare"].click(to_compare, [table["selected"]], [tabs, comparison["runs"]]).then(
            comparison["draw"], comparison["inputs"], comparison["outputs"]
        )
        detail["clone"].click(
            new["clone"],
            [studio.token, detail["select"]],
            [new["yaml_status"], new["preset"], *new["inputs"]],
        ).then(lambda: gr.Tabs(selected="new"), None, [tabs])
        new["clone_button"].click(
            new["clone"],
            [studio.token, new["clone_from"]],
            [new["yaml_status"], new["preset"], *new["inputs"]],
        )
        ui.load(new["review"], [new["preset"], *new["inputs"]], new["review_out"])
        ui.load(acc["describe"], [studio.token], acc["show"])
        ui.load(design["preview_fn"], design["inputs"], [design["matrix"], design["summary"]])

        # Shareable links: the address bar follows the selection.
        detail["select"].change(None, [detail["select"]], None, js=URL_JS % "run")
        comparison["runs"].change(None, [comparison["runs"]], None, js=URL_JS % "compare")
        comparison["axis"].change(None, [comparison["axis"]], None, js=AXIS_JS)
        understand["sweep"].change(None, [understand["sweep"]], None, js=URL_JS % "sweep")
    # Timers of several tabs and one user's clicks must not wait in one line.
    ui.queue(default_concurrency_limit=CONCURRENCY)
    return ui
