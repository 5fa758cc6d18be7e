"""Analysis of an ablation: forest plot, interactions, paired tests, heatmap, Pareto; exports."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from frontend import plots, views
from frontend.client import ApiError
from frontend.context import Studio, error_text
from frontend.views import parse_ids

TAB = "analysis"
RETENTION_KEY = "retention/ppl"


def export_files(
    view: views.AnalysisView, figures: dict[str, go.Figure | None], folder: Path
) -> list[str]:
    """CSV and LaTeX tables, and standalone HTML figures (PNG: the camera icon on each plot)."""
    written: list[Path] = []
    tables = {"effects": pd.DataFrame(view.effects), "comparisons": view.comparisons}
    for stem, frame in tables.items():
        if frame.empty:
            continue
        csv_path, tex_path = folder / f"{stem}.csv", folder / f"{stem}.tex"
        frame.to_csv(csv_path, index=False)
        tex_path.write_text(frame.to_latex(index=False, float_format="%.4g"), encoding="utf-8")
        written += [csv_path, tex_path]
    for stem, figure in figures.items():
        if figure is not None:
            path = folder / f"{stem}.html"
            figure.write_html(path, include_plotlyjs=True, full_html=True)
            written.append(path)
    return [str(p) for p in written]


def build(studio: Studio) -> dict[str, Any]:
    ids = studio.ids
    with gr.Row():
        sweep = gr.Dropdown([], label="Sweep", allow_custom_value=True, elem_id=ids(TAB, "sweep"))
        response = gr.Textbox(
            label="Response metric (empty: the first)", elem_id=ids(TAB, "response")
        )
        analyze = gr.Button("Analyze", variant="primary", elem_id=ids(TAB, "analyze"))
    note = gr.Markdown(elem_id=ids(TAB, "note"))
    with gr.Row():
        forest = gr.Plot(label="Effects", elem_id=ids(TAB, "forest"))
        interaction = gr.Plot(label="Interaction", elem_id=ids(TAB, "interaction"))
    tests = gr.Dataframe(
        pd.DataFrame(columns=["benchmark", "config", "mean_diff", "ci_low", "ci_high"]),
        label="Paired tests across seeds (Holm-corrected)",
        interactive=False,
        wrap=True,
        elem_id=ids(TAB, "tests"),
    )
    with gr.Row():
        heat = gr.Plot(label="Gain over base", elem_id=ids(TAB, "heatmap"))
        pareto = gr.Plot(label="Retention vs accuracy", elem_id=ids(TAB, "pareto"))
    exports = gr.File(
        label="Exports: CSV, LaTeX, HTML (PNG: camera icon on each plot)",
        file_count="multiple",
        elem_id=ids(TAB, "exports"),
    )

    def run(token: str | None, choice: str | None, response_: str) -> list[Any]:
        sweep_ids = parse_ids(choice)
        if not sweep_ids:
            return ["Pick a sweep.", None, None, None, None, None, None]
        params = {"response": response_} if response_.strip() else {}
        client = studio.api(token)
        try:
            body = client.sweep_analysis(sweep_ids[0], **params)
        except ApiError as exc:
            return [error_text(exc, "analyse the sweep"), None, None, None, None, None, None]
        try:
            keys = ",".join(k for k in (RETENTION_KEY, str(body.get("response", ""))) if k)
            runs = client.list_runs(sweep_id=sweep_ids[0], limit=1000, latest=keys)
            rows = views.sweep_table(runs, client.evaluations_for([r.id for r in runs]))
        except ApiError:
            rows = []
        view = views.analysis_view(body, response_.strip() or None, rows)
        figures: dict[str, go.Figure | None] = {
            "forest": plots.forest_plot(view.effects, title=f"Effects on {view.response} (95% CI)")
            if view.effects
            else None,
            "interaction": plots.interaction_plot(
                view.cells, first=view.factors[0], second=view.factors[1]
            )
            if view.cells
            else None,
            "heatmap": plots.heatmap(view.gains, title=f"Gain in {view.response} over base")
            if view.gains
            else None,
            "pareto": plots.pareto_scatter(view.frontier, title="Retention vs accuracy")
            if view.frontier
            else None,
        }
        folder = Path(tempfile.mkdtemp(prefix="unisd-export-"))
        files = export_files(view, figures, folder)
        text = (
            f"Sweep {sweep_ids[0]} · response **{view.response}** · share: `?sweep={sweep_ids[0]}`"
        )
        if view.notes:
            text += "\n\n" + "\n".join(f"- {n}" for n in view.notes)
        return [
            text,
            figures["forest"],
            figures["interaction"],
            view.comparisons,
            figures["heatmap"],
            figures["pareto"],
            files or None,
        ]

    outputs = [note, forest, interaction, tests, heat, pareto, exports]
    analyze.click(run, [studio.token, sweep, response], outputs)
    sweep.input(run, [studio.token, sweep, response], outputs)
    return {
        "sweep": sweep,
        "analyze": analyze,
        "run": run,
        "outputs": outputs,
        "note": note,
        "inputs": [studio.token, sweep, response],
    }
