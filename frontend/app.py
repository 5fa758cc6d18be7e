"""The studio UI: a Gradio Blocks app that reads and writes only through the REST API."""

from __future__ import annotations

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from frontend.client import ApiError, Run, StudioClient
from frontend.forms import config_from_form, validation_message
from frontend.plots import metric_curves
from unisd_core.config import BENCHMARKS, BUILTIN_MODELS
from unisd_core.presets import PRESETS

RUN_COLUMNS = [
    "id",
    "name",
    "status",
    "preset",
    "model",
    "benchmark",
    "step",
    "progress",
    "created",
]
LOSS_KEYS = ["loss/total"]
REFRESH_SECONDS = 2.0


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    rows = [
        [
            run.id,
            run.name or "",
            run.status,
            run.preset or "",
            run.base_model,
            run.dataset,
            f"{run.step}/{run.total_steps}",
            f"{run.progress:.0%}",
            run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        ]
        for run in runs
    ]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def create_ui(api_url: str, token: str | None = None) -> gr.Blocks:
    client = StudioClient(api_url, token)

    def submit(
        preset: str, model: str, benchmark: str, max_steps: float | None
    ) -> tuple[str, gr.Dropdown]:
        payload = config_from_form(preset, model, benchmark, max_steps)
        problem = validation_message(payload)
        if problem:
            return f"**Not submitted.** {problem}", gr.Dropdown()
        try:
            run = client.create_run(payload)
        except ApiError as exc:
            return f"**Not submitted.** {exc}", gr.Dropdown()
        return f"Run **{run.id}** queued.", gr.Dropdown(value=str(run.id))

    def refresh(selected: str | None) -> tuple[pd.DataFrame, gr.Dropdown, go.Figure | None, str]:
        try:
            runs = client.list_runs()
        except ApiError as exc:
            return runs_frame([]), gr.Dropdown(), None, f"Cannot list runs: {exc}"
        choices = [str(run.id) for run in runs]
        figure, note = None, ""
        if selected and selected in choices:
            run = next(r for r in runs if str(r.id) == selected)
            try:
                series = client.metrics(run.id, LOSS_KEYS)
                figure = metric_curves(
                    {k: [(p.step, p.value) for p in pts] for k, pts in series.items()},
                    title=f"Run {run.id}: loss",
                    y_title="loss",
                )
            except ApiError as exc:
                note = f"Cannot load metrics: {exc}"
            note = note or f"Run {run.id} is **{run.status}**" + (
                f": {run.error}" if run.error else ""
            )
        return runs_frame(runs), gr.Dropdown(choices=choices, value=selected), figure, note

    with gr.Blocks(title="UniSD Studio") as ui:
        gr.Markdown("# UniSD Studio\nSelf-distillation runs: configure, launch, watch.")
        with gr.Row():
            preset = gr.Dropdown(sorted(PRESETS), value="sft", label="Preset", elem_id="preset")
            model = gr.Dropdown(
                list(BUILTIN_MODELS),
                value=BUILTIN_MODELS[0],
                allow_custom_value=True,
                label="Base model (built-in, HF id or local path)",
                elem_id="model",
            )
            benchmark = gr.Dropdown(list(BENCHMARKS), value="scienceqa", label="Benchmark")
            max_steps = gr.Number(value=10, precision=0, label="Max steps", elem_id="max-steps")
        submit_button = gr.Button("Submit run", variant="primary", elem_id="submit-run")
        submit_status = gr.Markdown(elem_id="submit-status")
        runs_table = gr.Dataframe(
            value=runs_frame([]), label="Runs", interactive=False, elem_id="runs-table"
        )
        with gr.Row():
            selected = gr.Dropdown(
                [], label="Run to plot", allow_custom_value=True, elem_id="run-select"
            )
            run_note = gr.Markdown(elem_id="run-note")
        loss_plot = gr.Plot(label="Loss", elem_id="loss-plot")

        submit_button.click(
            submit, [preset, model, benchmark, max_steps], [submit_status, selected]
        )
        timer = gr.Timer(REFRESH_SECONDS)
        outputs = [runs_table, selected, loss_plot, run_note]
        timer.tick(refresh, [selected], outputs)
        selected.change(refresh, [selected], outputs)
        ui.load(refresh, [selected], outputs)
    return ui
