"""Compare: overlaid curves of runs or a sweep, mean +/- CI over seeds, scores, config diff."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gradio as gr
import pandas as pd

from frontend import plots, views
from frontend.client import ApiError, Evaluation, Point, Run
from frontend.context import Studio, error_text
from frontend.views import parse_ids

TAB = "compare"
#: Points per curve asked of the API (server-side downsampling keeps the page fast).
MAX_POINTS = 500
METRICS = (
    "loss/total",
    "loss/distill",
    "train/lr",
    "train/grad_norm",
    "sys/tokens_per_s",
    "agreement/weight_mean",
    "ema/teacher_drift",
    "clip/fraction_clipped",
    "features/mse",
    "contrastive/loss",
)


def build(studio: Studio) -> dict[str, Any]:
    ids = studio.ids
    with gr.Row():
        runs_box = gr.Dropdown(
            [],
            multiselect=True,
            allow_custom_value=True,
            label="Runs to compare",
            elem_id=ids(TAB, "runs"),
            scale=3,
        )
        sweep = gr.Dropdown(
            [], label="...or a sweep", allow_custom_value=True, elem_id=ids(TAB, "sweep")
        )
        metric = gr.Dropdown(
            list(METRICS),
            value="loss/total",
            allow_custom_value=True,
            label="Metric",
            elem_id=ids(TAB, "metric"),
        )
    with gr.Row():
        smoothing = gr.Slider(
            0.0,
            0.99,
            value=0.0,
            step=0.01,
            label="Smoothing (EMA weight)",
            elem_id=ids(TAB, "smoothing"),
        )
        axis = gr.Radio(
            list(views.AXES),
            value="step",
            label="x axis",
            info="time: minutes since each run's first step (compares runs by cost)",
            elem_id=ids(TAB, "axis"),
        )
        bands = gr.Checkbox(label="Mean ± 95% CI across seeds", elem_id=ids(TAB, "bands"))
        log_y = gr.Checkbox(label="Log scale", elem_id=ids(TAB, "log"))
        plot_button = gr.Button("Plot", variant="primary", elem_id=ids(TAB, "plot-button"))
    note = gr.Markdown(elem_id=ids(TAB, "note"))
    curves_plot = gr.Plot(label="Curves", elem_id=ids(TAB, "curves"))
    scores = gr.Dataframe(
        pd.DataFrame(columns=["run", "status"]),
        label="Final scores (config columns show only what differs)",
        interactive=False,
        wrap=True,
        elem_id=ids(TAB, "scores"),
    )
    bars = gr.Plot(label="Per benchmark", elem_id=ids(TAB, "bars"))

    def fetch(
        token: str | None, run_ids: list[int], key: str
    ) -> tuple[list[Run], dict[int, list[Point]], dict[int, list[Evaluation]], list[str]]:
        client = studio.api(token)
        problems: list[str] = []

        def one(run_id: int) -> tuple[Run | None, list[Point], list[Evaluation]]:
            try:
                run = client.get_run(run_id)
                pts = client.metrics(run_id, [key], max_points=MAX_POINTS).get(key, [])
            except ApiError as exc:
                problems.append(f"run {run_id}: {error_text(exc, 'load it')}")
                return None, [], []
            try:
                evals = client.evaluations(run_id)
            except ApiError:
                evals = []
            return run, pts, evals

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(one, run_ids))
        runs = [r for r, _, _ in results if r is not None]
        points = {r.id: p for r, p, _ in results if r is not None}
        evaluations = {r.id: e for r, _, e in results if r is not None}
        return runs, points, evaluations, problems

    def draw(
        token: str | None,
        chosen: list[str] | None,
        key: str,
        smooth: float,
        axis_: str,
        bands_: bool,
        log_: bool,
    ) -> list[Any]:
        run_ids = parse_ids(chosen)
        if not run_ids:
            return ["Pick runs (or a sweep) to compare.", None, None, None]
        key = key or "loss/total"
        runs, points, evaluations, problems = fetch(token, run_ids, key)
        figure, axis_note = views.comparison_figure(
            runs, points, key=key, axis=axis_, smoothing=smooth, bands=bands_, log_y=log_
        )
        by_config = views.scores_by_config(runs, evaluations)
        bar_figure = plots.benchmark_bars(by_config) if by_config else None
        share = f"Share: `{views.compare_link([r.id for r in runs], axis_)}`"
        text = "\n\n".join([share, axis_note, *problems]).strip()
        return [text, figure, views.scores_frame(runs, evaluations), bar_figure]

    def from_sweep(token: str | None, choice: str | None) -> Any:
        sweep_ids = parse_ids(choice)
        if not sweep_ids:
            return gr.skip()
        try:
            found = studio.api(token).get_sweep(sweep_ids[0])
        except ApiError as exc:
            gr.Warning(error_text(exc, "load the sweep"))
            return gr.skip()
        ids_ = found.run_ids or [
            r.id for r in studio.api(token).list_runs() if r.sweep_id == found.id
        ]
        return gr.Dropdown(value=[f"#{i}" for i in ids_])

    inputs = [studio.token, runs_box, metric, smoothing, axis, bands, log_y]
    outputs = [note, curves_plot, scores, bars]
    plot_button.click(draw, inputs, outputs)
    for control in (metric, axis, bands, log_y):
        control.change(draw, inputs, outputs)
    smoothing.release(draw, inputs, outputs)
    sweep.input(from_sweep, [studio.token, sweep], [runs_box]).then(draw, inputs, outputs)
    return {
        "runs": runs_box,
        "sweep": sweep,
        "axis": axis,
        "draw": draw,
        "inputs": inputs,
        "outputs": outputs,
        "curves": curves_plot,
    }
