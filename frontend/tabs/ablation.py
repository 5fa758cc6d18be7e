"""Ablation: factors, levels, design, seeds -> design matrix, run count, estimate -> queue.

Above the factorial designer sits the `paper-table` template: the paper's methods x training
benchmarks x seeds, queued as one sweep whose analysis is the paper's main table.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from frontend import forms
from frontend import templates_view as paper
from frontend.client import ApiError
from frontend.context import Studio, error_text
from unisd_core.config import BENCHMARKS, BUILTIN_MODELS, COMPONENTS
from unisd_core.presets import PRESETS
from unisd_core.templates import BUDGETS, PAPER_METHODS, PAPER_TRAIN_BENCHMARKS, PaperTableOptions

TAB = "ablation"
#: Hyper-parameters offered as extra factors: every numeric field of the config.
NUMERIC_PATHS = [s.path for s in forms.SPECS if s.kind in ("int", "float")]
SWEEP_COLUMNS = ["id", "name", "status", "design", "runs", "done"]
DESIGN_LABELS = {
    "full": "full factorial (2^k)",
    "fractional": "half fraction (2^(k-1), k >= 3)",
    "one_at_a_time": "one at a time (base + each factor)",
}


def base_payload(
    preset: str, model: str, benchmark: str, steps: float | None, eval_items: float | None = None
) -> dict[str, Any]:
    payload = forms.config_from_form(preset, model, benchmark, steps)
    if eval_items:
        # Every run is evaluated after training; a small subset keeps a wide ablation quick.
        payload = forms.with_overrides(payload, {"data.max_eval_examples": int(eval_items)})
    return payload


def plan(
    preset: str,
    model: str,
    benchmark: str,
    steps: float | None,
    components: list[str],
    extra: list[tuple[str, str]],
    design: str,
    seeds: float | None,
    eval_items: float | None = None,
) -> tuple[pd.DataFrame, str, list[dict[str, Any]]]:
    """(design matrix, summary, run payloads) for the chosen factors."""
    factors = forms.ablation_factors(components, extra)
    n_seeds = int(seeds or 1)
    rows = forms.design_matrix(factors, design, n_seeds)
    base = base_payload(preset, model, benchmark, steps, eval_items)
    payloads = []
    for row in rows:
        assignments = {k: v for k, v in row.items() if k not in ("config", "seed")}
        payload = forms.with_overrides(base, assignments)
        payload = forms.with_overrides(payload, {"train.seed": int(row["seed"])})
        payloads.append(payload)
    problems = {e for p in payloads for e in [forms.validation_message(p)] if e}
    minutes = sum(forms.estimate(p).minutes or 0.0 for p in payloads)
    n_configs = len({r["config"] for r in rows})
    summary = (
        f"**{len(rows)} runs** = {n_configs} configurations x {n_seeds} seed(s) · "
        f"design: {DESIGN_LABELS.get(design, design)} · "
        f"estimated compute: ~{minutes / 60:.2f} device-hours"
    )
    if problems:
        summary += "\n\n**Problem:** " + "; ".join(sorted(problems))
    return pd.DataFrame(rows), summary, payloads


def sweep_body(
    name: str,
    preset: str,
    model: str,
    benchmark: str,
    steps: float | None,
    components: list[str],
    extra: list[tuple[str, str]],
    design: str,
    seeds: float | None,
    eval_items: float | None = None,
) -> dict[str, Any]:
    """The request body of `POST /sweeps` (and `/sweeps/preview`)."""
    base = base_payload(preset, model, benchmark, steps, eval_items)
    base.pop("preset", None)
    factors: list[dict[str, Any]] = [{"name": c} for c in components]
    for path, levels in extra:
        if path and levels.strip():
            factors.append({"name": path, "levels": forms.parse_levels(levels)})
    return {
        "name": name or "ablation",
        "base_preset": preset,
        "base": base,
        "factors": factors,
        "design": design,
        "seeds": int(seeds or 1),
    }


def preview_frame(points: list[dict[str, Any]], seeds: list[int]) -> pd.DataFrame:
    rows = []
    for index, point in enumerate(points, start=1):
        for seed in seeds:
            rows.append({"config": index, **point.get("levels", {}), "seed": seed})
    return pd.DataFrame(rows)


def _option_info(name: str) -> str:
    """A template option's own description (the tooltip the API documents it with)."""
    return PaperTableOptions.model_fields[name].description or ""


def build_paper_table(studio: Studio) -> dict[str, Any]:
    """The paper-table template: its options, a preview from the API, and a queue button."""
    ids = studio.ids
    defaults = PaperTableOptions()
    with gr.Accordion("Paper table (template)", open=True, elem_id=ids(TAB, "paper")):
        gr.Markdown(
            "The paper's main table as one sweep: every method (row) on every training "
            "benchmark, each run evaluated in-distribution and, for ScienceQA and MBPP, "
            "out-of-distribution (GPQA, HumanEval). Gains are measured from the untrained `base`."
        )
        with gr.Row():
            name = gr.Textbox(value="paper-table", label="Name", elem_id=ids(TAB, "paper-name"))
            model = gr.Dropdown(
                list(BUILTIN_MODELS),
                value=BUILTIN_MODELS[0],
                allow_custom_value=True,
                label="Model",
                info=_option_info("model"),
                elem_id=ids(TAB, "paper-model"),
            )
            seeds = gr.Number(
                value=defaults.seeds if isinstance(defaults.seeds, int) else 3,
                precision=0,
                label="Seeds",
                info=_option_info("seeds"),
                elem_id=ids(TAB, "paper-seeds"),
            )
            source = gr.Textbox(
                value=defaults.source,
                label="Data source",
                info=_option_info("source"),
                elem_id=ids(TAB, "paper-source"),
            )
        with gr.Row():
            budget = gr.Radio(
                list(BUDGETS),
                value=defaults.budget,
                label="Budget",
                elem_id=ids(TAB, "paper-budget"),
            )
            budget_note = gr.Markdown(
                paper.budget_help(defaults.budget), elem_id=ids(TAB, "paper-budget-note")
            )
        methods = gr.CheckboxGroup(
            list(PAPER_METHODS),
            value=list(PAPER_METHODS),
            label="Methods (rows)",
            info=_option_info("methods"),
            elem_id=ids(TAB, "paper-methods"),
        )
        benchmarks = gr.CheckboxGroup(
            list(PAPER_TRAIN_BENCHMARKS),
            value=list(PAPER_TRAIN_BENCHMARKS),
            label="Training benchmarks",
            info=_option_info("benchmarks"),
            elem_id=ids(TAB, "paper-benchmarks"),
        )
        with gr.Row():
            max_steps = gr.Number(
                value=None,
                precision=0,
                label="Max steps per run (empty: the budget's)",
                elem_id=ids(TAB, "paper-max-steps"),
            )
            max_eval = gr.Number(
                value=None,
                precision=0,
                label="Max evaluation items per benchmark (empty: the budget's)",
                elem_id=ids(TAB, "paper-max-eval"),
            )
            preview = gr.Button("Preview", elem_id=ids(TAB, "paper-preview"))
            queue = gr.Button(
                "Queue paper table", variant="primary", elem_id=ids(TAB, "paper-queue")
            )
        summary = gr.Markdown(elem_id=ids(TAB, "paper-summary"))
        status = gr.Markdown(elem_id=ids(TAB, "paper-status"))

    def body(name_: str, *options: Any) -> dict[str, Any]:
        model_, budget_, seeds_, methods_, benchmarks_, source_, steps_, eval_ = options
        return paper.paper_table_body(
            name_, model_, budget_, seeds_, methods_, benchmarks_, source_, steps_, eval_
        )

    def do_preview(token: str | None, *options: Any) -> str:
        request = body("preview", *options)
        try:
            found = studio.api(token).preview_sweep(request)
        except ApiError as exc:
            return error_text(exc, "preview the paper table")
        chosen = request["template_options"]
        return paper.preview_markdown(found, chosen["benchmarks"], chosen["methods"])

    def do_queue(token: str | None, name_: str, *options: Any) -> str:
        try:
            sweep = studio.api(token).create_sweep(body(name_, *options))
        except ApiError as exc:
            return f"**Not queued.** {error_text(exc, 'queue the paper table')}"
        return paper.queued_message(sweep.id, sweep.run_count)

    options = [model, budget, seeds, methods, benchmarks, source, max_steps, max_eval]
    budget.change(paper.budget_help, [budget], [budget_note], show_progress="hidden")
    preview.click(do_preview, [studio.token, *options], [summary])
    return {
        "queue": queue,
        "queue_fn": do_queue,
        "status": status,
        "inputs": [studio.token, name, *options],
    }


def build(studio: Studio) -> dict[str, Any]:
    ids = studio.ids
    template = build_paper_table(studio)
    gr.Markdown("### Factorial design")
    with gr.Row():
        name = gr.Textbox(value="ablation", label="Name", elem_id=ids(TAB, "name"))
        preset = gr.Dropdown(
            sorted(PRESETS), value="gkd", label="Base preset", elem_id=ids(TAB, "preset")
        )
        model = gr.Dropdown(
            list(BUILTIN_MODELS),
            value=BUILTIN_MODELS[0],
            allow_custom_value=True,
            label="Base model",
            elem_id=ids(TAB, "model"),
        )
        benchmark = gr.Dropdown(
            list(BENCHMARKS), value="scienceqa", label="Benchmark", elem_id=ids(TAB, "benchmark")
        )
        steps = gr.Number(
            value=3, precision=0, label="Max steps per run", elem_id=ids(TAB, "steps")
        )
    components = gr.CheckboxGroup(
        list(COMPONENTS),
        value=["agreement", "ema"],
        label="Component factors (off / on)",
        elem_id=ids(TAB, "components"),
    )
    extra_rows = []
    with gr.Row():
        for index in range(2):
            path = gr.Dropdown(
                ["", *NUMERIC_PATHS],
                value="",
                label=f"Hyper-parameter {index + 1}",
                elem_id=ids(TAB, f"param-{index}"),
            )
            levels = gr.Textbox(
                label="its two levels (e.g. 0.01, 0.1)", elem_id=ids(TAB, f"levels-{index}")
            )
            extra_rows += [path, levels]
    with gr.Row():
        design = gr.Radio(
            [(label, key) for key, label in DESIGN_LABELS.items()],
            value="full",
            label="Design",
            elem_id=ids(TAB, "design"),
        )
        seeds = gr.Number(value=2, precision=0, label="Seeds", elem_id=ids(TAB, "seeds"))
        eval_items = gr.Number(
            value=None,
            precision=0,
            minimum=1,
            label="Eval items per benchmark (empty: all)",
            elem_id=ids(TAB, "eval-items"),
        )
        preview = gr.Button("Preview design", elem_id=ids(TAB, "preview"))
        queue = gr.Button("Queue ablation", variant="primary", elem_id=ids(TAB, "queue"))
    summary = gr.Markdown(elem_id=ids(TAB, "summary"))
    matrix = gr.Dataframe(
        value=pd.DataFrame(columns=["config", "seed"]),
        label="Design matrix",
        interactive=False,
        elem_id=ids(TAB, "matrix"),
    )
    status = gr.Markdown(elem_id=ids(TAB, "status"))
    sweeps_table = gr.Dataframe(
        value=pd.DataFrame(columns=SWEEP_COLUMNS),
        label="Sweeps",
        interactive=False,
        elem_id=ids(TAB, "sweeps"),
    )

    def extras(values: tuple[Any, ...]) -> list[tuple[str, str]]:
        return [(values[i] or "", values[i + 1] or "") for i in range(0, len(values), 2)]

    def form_body(name_: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """The sweep request from the form's values (the order of `inputs` below)."""
        preset_, model_, bench_, steps_, comps, design_, seeds_, eval_, *rest = args
        return sweep_body(
            name_, preset_, model_, bench_, steps_, comps, extras(tuple(rest)), design_, seeds_,
            eval_items=eval_,
        )  # fmt: skip

    def do_preview(token: str | None, *args: Any) -> tuple[pd.DataFrame, str]:
        preset_, model_, bench_, steps_, comps, design_, seeds_, eval_, *rest = args
        frame, text, _ = plan(
            preset_, model_, bench_, steps_, comps, extras(tuple(rest)), design_, seeds_, eval_
        )
        if not comps and not any(p for p, _ in extras(tuple(rest))):
            return frame, "Pick at least one factor."
        body = form_body("preview", args)
        try:
            preview_ = studio.api(token).preview_sweep(body)
        except ApiError as exc:
            if exc.missing_endpoint:
                return frame, text
            return frame, f"**Design not valid:** {error_text(exc, 'preview the design')}"
        configs = len(preview_.points)
        text = (
            f"**{preview_.run_count} runs** = {configs} configurations x "
            f"{len(preview_.seeds)} seed(s) · design: {DESIGN_LABELS.get(design_, design_)} · "
            f"estimated compute: ~{preview_.estimated_gpu_hours:.2f} GPU-hours "
            f"({preview_.estimate_basis})"
        )
        if preview_.aliases:
            aliased = "; ".join(f"{k} = {', '.join(v)}" for k, v in preview_.aliases.items())
            text += f"\n\nAliased effects: {aliased}"
        return preview_frame(preview_.points, preview_.seeds), text

    def do_queue(token: str | None, name_: str, *args: Any) -> str:
        preset_, model_, bench_, steps_, comps, design_, seeds_, eval_, *rest = args
        factors = forms.ablation_factors(comps, extras(tuple(rest)))
        if not factors:
            return "Pick at least one factor."
        frame, _, payloads = plan(
            preset_, model_, bench_, steps_, comps, extras(tuple(rest)), design_, seeds_, eval_
        )
        problems = [forms.validation_message(p) for p in payloads]
        if any(problems):
            return "**Not queued.** " + "; ".join(sorted({p for p in problems if p}))
        client = studio.api(token)
        body = form_body(name_, args)
        try:
            sweep = client.create_sweep(body)
        except ApiError as exc:
            if not exc.missing_endpoint:
                return f"**Not queued.** {error_text(exc, 'queue the ablation')}"
            queued = []
            for payload in payloads:
                try:
                    queued.append(client.create_run({**payload, "name": name_ or None}).id)
                except ApiError as run_exc:
                    return f"Queued {queued}, then: {error_text(run_exc, 'queue a run')}"
            return (
                f"This server has no sweeps API yet: queued {len(queued)} runs one by one "
                f"({', '.join(f'#{i}' for i in queued)}). Compare: `?compare="
                + ",".join(map(str, queued))
                + "`"
            )
        return (
            f"Sweep **{sweep.id}** queued with {sweep.run_count or len(frame)} runs. "
            f"Analysis: `?sweep={sweep.id}`"
        )

    def sweeps(token: str | None) -> Any:
        try:
            found = studio.api(token).list_sweeps()
        except ApiError:
            return gr.skip()
        return pd.DataFrame(
            [
                [
                    s.id,
                    s.name,
                    s.status,
                    s.design,
                    s.run_count,
                    f"{(s.progress.fraction_done if s.progress else 0):.0%}",
                ]
                for s in found
            ],
            columns=SWEEP_COLUMNS,
        )

    inputs = [preset, model, benchmark, steps, components, design, seeds, eval_items, *extra_rows]
    preview_inputs = [studio.token, *inputs]
    preview.click(do_preview, preview_inputs, [matrix, summary])
    for control in (components, design, seeds):
        control.change(do_preview, preview_inputs, [matrix, summary])
    queue.click(do_queue, [studio.token, name, *inputs], [status]).then(
        sweeps, [studio.token], [sweeps_table]
    )
    template["queue"].click(template["queue_fn"], template["inputs"], [template["status"]]).then(
        sweeps, [studio.token], [sweeps_table]
    )
    gr.Timer(5.0).tick(
        sweeps, [studio.token], [sweeps_table], show_progress="hidden", trigger_mode="once"
    )
    return {
        "preview": preview,
        "queue": queue,
        "status": status,
        "matrix": matrix,
        "sweeps": sweeps_table,
        "preview_fn": do_preview,
        "inputs": preview_inputs,
        "summary": summary,
    }
