"""Analysis of an ablation: forest plot, interactions, paired tests, heatmap, Pareto; exports.

A template sweep (`paper-table`) shows the paper's table instead: scores per method and
benchmark, gains over the base (heatmap and forest plot), retention perplexity and the paper's
findings with their verdicts. Exports are written in a second step, after the figures are shown:
PNG through kaleido starts a Chromium, which takes seconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from frontend import plots, views
from frontend import templates_view as paper
from frontend.client import ApiError
from frontend.context import Studio, error_text
from frontend.views import parse_ids

TAB = "analysis"
RETENTION_KEY = "retention/ppl"


def export_files(
    tables: Mapping[str, pd.DataFrame],
    figures: Mapping[str, go.Figure | None],
    folder: Path,
    *,
    texts: Mapping[str, str] | None = None,
    png: plots.PngWriter | None = plots.write_pngs,
) -> tuple[list[str], str]:
    """(files, note): tables as CSV and LaTeX, figures as HTML and PNG, texts as Markdown.

    The note says when PNG export failed (the HTML files then stand in for the images).
    """
    written: list[Path] = []
    for stem, frame in tables.items():
        if frame.empty:
            continue
        csv_path, tex_path = folder / f"{stem}.csv", folder / f"{stem}.tex"
        frame.to_csv(csv_path, index=False)
        if stem == "paper_table":
            latex = paper.grid_latex(frame)
        else:
            latex = frame.to_latex(index=False, float_format="%.4g")
        tex_path.write_text(latex, encoding="utf-8")
        written += [csv_path, tex_path]
    for stem, text in (texts or {}).items():
        path = folder / f"{stem}.md"
        path.write_text(text + "\n", encoding="utf-8")
        written.append(path)
    drawn, note = plots.write_figures(figures, folder, png=png)
    return [str(p) for p in written + drawn], note


def paper_figures(table: Mapping[str, Any]) -> dict[str, go.Figure | None]:
    """The paper-table figures: gains heatmap, overall-gain forest plot, retention bars."""
    gains = paper.gain_matrix(table)
    overall = paper.overall_gains(table)
    retention = paper.retention_rows(table)
    return {
        "paper_gains": plots.heatmap(
            gains,
            title="Gain over base (percentage points)",
            colorbar="pp",
            columns=paper.gain_columns(table),
            text_format="+.1f",
            y_title="method",
        )
        if gains
        else None,
        "paper_overall_gains": plots.forest_plot(
            overall,
            title="Overall gain over base (95% CI across seeds)",
            x_title="gain in the overall score (percentage points)",
            y_title="method",
        )
        if overall
        else None,
        "paper_retention": plots.bar_with_ci(
            retention,
            title="Retention: perplexity under the base model (lower: less drift)",
            y_title="retention PPL",
        )
        if retention
        else None,
    }


def build(studio: Studio) -> dict[str, Any]:
    ids = studio.ids
    with gr.Row():
        sweep = gr.Dropdown([], label="Sweep", allow_custom_value=True, elem_id=ids(TAB, "sweep"))
        response = gr.Textbox(
            label="Response metric (empty: the first)", elem_id=ids(TAB, "response")
        )
        analyze = gr.Button("Analyze", variant="primary", elem_id=ids(TAB, "analyze"))
    note = gr.Markdown(elem_id=ids(TAB, "note"))
    with gr.Column(visible=False, elem_id=ids(TAB, "paper")) as paper_box:
        gr.Markdown("### Paper table: score (%) per method and benchmark, mean ± 95% CI half-width")
        paper_grid = gr.Dataframe(
            pd.DataFrame(columns=["method"]),
            label="Paper table",
            interactive=False,
            wrap=True,
            elem_id=ids(TAB, "paper-table"),
        )
        with gr.Row():
            paper_heat = gr.Plot(label="Gain over base", elem_id=ids(TAB, "paper-gains"))
            paper_forest = gr.Plot(label="Overall gain", elem_id=ids(TAB, "paper-forest"))
        with gr.Row():
            retention = gr.Plot(label="Retention", elem_id=ids(TAB, "paper-retention"))
            findings = gr.Markdown(elem_id=ids(TAB, "paper-findings"))
    with gr.Column(elem_id=ids(TAB, "factorial")) as factorial_box:
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
        label="Exports: CSV, LaTeX, PNG and HTML figures",
        file_count="multiple",
        elem_id=ids(TAB, "exports"),
    )
    export_note = gr.Markdown(elem_id=ids(TAB, "export-note"))
    # What the export step writes: {"tables": ..., "figures": ..., "texts": ...} of the last run.
    pending = gr.State(None)

    def result(
        text: str,
        paper_parts: list[Any] | None = None,
        factorial_parts: list[Any] | None = None,
        state: dict[str, Any] | None = None,
    ) -> list[Any]:
        """The outputs, in order: note, the paper view (5), the factorial view (5), state.

        A view without parts is hidden (the factorial one stays shown when neither has any).
        """
        return [
            text,
            gr.Column(visible=paper_parts is not None),
            *(paper_parts or [None, None, None, None, ""]),
            gr.Column(visible=paper_parts is None),
            *(factorial_parts or [None, None, None, None, None]),
            state,
        ]

    def paper_view(sweep_id: int, body: Mapping[str, Any], table: Mapping[str, Any]) -> list[Any]:
        figures = paper_figures(table)
        found = paper.findings_markdown(table.get("findings") or [])
        text = (
            f"Sweep {sweep_id} · paper table · {body.get('n_runs', 0)} run(s) evaluated, "
            f"{body.get('n_missing', 0)} not yet · share: `?sweep={sweep_id}`"
        )
        notes = [str(n) for n in table.get("notes") or []]
        if body.get("note"):
            notes.append(str(body["note"]))
        if notes:
            text += "\n\n" + "\n".join(f"- {n}" for n in notes)
        parts = [
            paper.paper_grid(table),
            figures["paper_gains"],
            figures["paper_overall_gains"],
            figures["paper_retention"],
            found,
        ]
        state = {
            "tables": paper.paper_frames(table),
            "figures": figures,
            "texts": {"paper_findings": found},
        }
        return result(text, paper_parts=parts, state=state)

    def run(token: str | None, choice: str | None, response_: str) -> list[Any]:
        sweep_ids = parse_ids(choice)
        if not sweep_ids:
            return result("Pick a sweep.")
        params = {"response": response_} if response_.strip() else {}
        client = studio.api(token)
        try:
            body = client.sweep_analysis(sweep_ids[0], **params)
        except ApiError as exc:
            return result(error_text(exc, "analyse the sweep"))
        table = body.get("paper_table")
        if isinstance(table, Mapping):
            return paper_view(sweep_ids[0], body, table)
        if not params and _is_template(client, sweep_ids[0]):
            waiting = str(body.get("note") or "no run has been evaluated yet")
            return result(f"Sweep {sweep_ids[0]} · paper table: {waiting}.")
        return factorial_view(client, sweep_ids[0], body, response_.strip() or None)

    def factorial_view(
        client: Any, sweep_id: int, body: Mapping[str, Any], response_: str | None
    ) -> list[Any]:
        try:
            keys = ",".join(k for k in (RETENTION_KEY, str(body.get("response", ""))) if k)
            runs = client.list_runs(sweep_id=sweep_id, limit=1000, latest=keys)
            rows = views.sweep_table(runs, client.evaluations_for([r.id for r in runs]))
        except ApiError:
            rows = []
        view = views.analysis_view(body, response_, rows)
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
        text = f"Sweep {sweep_id} · response **{view.response}** · share: `?sweep={sweep_id}`"
        if view.notes:
            text += "\n\n" + "\n".join(f"- {n}" for n in view.notes)
        tables = {"effects": pd.DataFrame(view.effects), "comparisons": view.comparisons}
        parts = [
            figures["forest"],
            figures["interaction"],
            view.comparisons,
            figures["heatmap"],
            figures["pareto"],
        ]
        return result(
            text, factorial_parts=parts, state={"tables": tables, "figures": figures, "texts": {}}
        )

    def export(state: Mapping[str, Any] | None) -> tuple[Any, str]:
        if not state:
            return None, ""
        folder = Path(tempfile.mkdtemp(prefix="unisd-export-"))
        files, problem = export_files(
            state["tables"], state["figures"], folder, texts=state.get("texts")
        )
        return files or None, problem

    outputs = [
        note,
        paper_box,
        paper_grid,
        paper_heat,
        paper_forest,
        retention,
        findings,
        factorial_box,
        forest,
        interaction,
        tests,
        heat,
        pareto,
        pending,
    ]
    inputs = [studio.token, sweep, response]
    for trigger in (analyze.click, sweep.input):
        trigger(run, inputs, outputs).then(export, [pending], [exports, export_note])
    return {
        "sweep": sweep,
        "analyze": analyze,
        "run": run,
        "outputs": outputs,
        "note": note,
        "inputs": inputs,
        "export": export,
        "export_inputs": [pending],
        "export_outputs": [exports, export_note],
    }


def _is_template(client: Any, sweep_id: int) -> bool:
    """Whether a sweep was queued from a template (its analysis is the paper's table)."""
    try:
        return bool(getattr(client.get_sweep(sweep_id), "template", None))
    except ApiError:
        return False
