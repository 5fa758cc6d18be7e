"""Run detail: live curves, component diagnostics, samples, log, evaluations, artifacts, config."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
import yaml

from frontend import views
from frontend.client import ApiError, Artifact, Point, Run, StudioClient
from frontend.context import Studio, error_text
from frontend.plots import metric_curves
from frontend.views import ACTIVE, parse_ids

TAB = "run"
MAX_POINTS = 1000
#: Figures of the detail page: title, unit, which metric keys (prefix match on `*`).
FIGURES = (
    ("losses", "Loss terms", "loss (nats/token)", ("loss/*", "contrastive/loss")),
    ("lr", "Learning rate", "learning rate", ("train/lr",)),
    ("grad", "Gradient norm", "global L2 norm", ("train/grad_norm",)),
    ("speed", "Throughput", "tokens / s", ("sys/tokens_per_s",)),
    ("memory", "Memory", "GB", ("sys/peak_mem_gb", "sys/gpu_mem_gb", "sys/mem_gb")),
    (
        "diagnostics",
        "Component diagnostics",
        "value",
        ("agreement/*", "ema/*", "contrastive/violation_rate", "features/*", "clip/*"),
    ),
)


def select_keys(series: dict[str, Any], patterns: tuple[str, ...]) -> list[str]:
    keys = []
    for pattern in patterns:
        if pattern.endswith("*"):
            keys += sorted(k for k in series if k.startswith(pattern[:-1]))
        elif pattern in series:
            keys.append(pattern)
    return list(dict.fromkeys(keys))


def figures(run: Run, series: dict[str, list[Point]]) -> list[go.Figure | None]:
    out: list[go.Figure | None] = []
    for _, title, unit, patterns in FIGURES:
        keys = select_keys(series, patterns)
        if not keys:
            out.append(None)
            continue
        data = {k: [(p.step, p.value) for p in series[k]] for k in keys}
        out.append(metric_curves(data, title=f"Run {run.id}: {title}", y_title=unit))
    return out


def summary_markdown(run: Run) -> str:
    lines = [
        f"### Run {run.id}: {run.name or run.preset or 'custom'}",
        f"**Status:** {run.status}"
        + (f" (queue position {run.queue_position})" if run.queue_position else "")
        + f" · **Progress:** {views.progress_bar(run.progress)} step {run.step}/{run.total_steps}"
        + (
            f" · **ETA:** {views.format_duration(views.eta_seconds(run))}"
            if run.status == "running"
            else ""
        ),
        f"**Model:** `{run.base_model}` · **Benchmark:** {run.dataset} · **Seed:** {run.seed}"
        f" · **Components:** {views.badges(run.config)}",
        f"Share: `?run={run.id}`",
    ]
    if run.error:
        lines.append(f"\n**Error:** {run.error}")
    return "\n\n".join(lines)


def samples_text(client: StudioClient, run: Run, artifacts: list[Artifact]) -> str:
    """Student vs teacher completions from the run's `samples` artifact (JSONL), when present."""
    sample = next((a for a in artifacts if a.kind == "samples" or "sample" in a.name), None)
    if sample is None:
        return "No sample completions recorded (set train.sample_every to log them)."
    try:
        text = client.artifact_text(run.id, sample.name)
    except ApiError as exc:
        return error_text(exc, "load the samples")
    blocks = []
    for line in text.splitlines()[-20:]:
        try:
            item = json.loads(line)
        except ValueError:
            blocks.append(line)
            continue
        blocks.append(
            f"**step {item.get('step', '?')}** · prompt: {str(item.get('prompt', ''))[:300]}\n\n"
            f"- student: {str(item.get('student', item.get('completion', '')))[:500]}\n"
            f"- teacher: {str(item.get('teacher', ''))[:500]}"
        )
    return "\n\n---\n\n".join(blocks) or "The samples file is empty."


def artifacts_markdown(client: StudioClient, run_id: int, artifacts: list[Artifact]) -> str:
    if not artifacts:
        return "No artifacts yet."
    lines = ["| name | kind | size |", "|---|---|---|"]
    for a in artifacts:
        size = f"{a.size / 1e6:.2f} MB" if a.size else ""
        lines.append(f"| [{a.name}]({client.artifact_url(run_id, a.name)}) | {a.kind} | {size} |")
    return "\n".join(lines)


def build(studio: Studio) -> dict[str, Any]:
    ids = studio.ids
    with gr.Row():
        run_select = gr.Dropdown(
            [], label="Run", allow_custom_value=True, elem_id=ids(TAB, "select"), scale=2
        )
        cancel = gr.Button("Cancel run", variant="stop", elem_id=ids(TAB, "cancel"))
        retry = gr.Button("Retry", elem_id=ids(TAB, "retry"))
        clone = gr.Button("Clone and edit", elem_id=ids(TAB, "clone"))
    summary = gr.Markdown("Pick a run.", elem_id=ids(TAB, "summary"))
    message = gr.Markdown(elem_id=ids(TAB, "message"))
    plots: list[gr.Plot] = []
    for row in range(0, len(FIGURES), 2):
        with gr.Row():
            for name, title, _, _ in FIGURES[row : row + 2]:
                plots.append(gr.Plot(label=title, elem_id=ids(TAB, f"plot-{name}")))
    diagnostics = gr.Markdown(elem_id=ids(TAB, "diagnostics"))
    with gr.Tabs():
        with gr.Tab("Evaluations"):
            evaluations = gr.Dataframe(
                views.evaluations_frame([]), interactive=False, elem_id=ids(TAB, "evaluations")
            )
        with gr.Tab("Samples"):
            samples = gr.Markdown(elem_id=ids(TAB, "samples"))
        with gr.Tab("Log"):
            log = gr.Code(language="shell", lines=15, max_lines=30, elem_id=ids(TAB, "log"))
        with gr.Tab("Artifacts"):
            artifacts = gr.Markdown(elem_id=ids(TAB, "artifacts"))
        with gr.Tab("Config"), gr.Row():
            config = gr.Code(language="yaml", label="Config", elem_id=ids(TAB, "config"))
            with gr.Column():
                other = gr.Dropdown(
                    [],
                    label="Diff against run",
                    allow_custom_value=True,
                    elem_id=ids(TAB, "diff-with"),
                )
                diff = gr.Dataframe(
                    pd.DataFrame(columns=["setting"]), interactive=False, elem_id=ids(TAB, "diff")
                )
        with gr.Tab("Notes and tags"):
            tags = gr.Textbox(label="Tags (comma-separated)", elem_id=ids(TAB, "tags"))
            notes = gr.Textbox(label="Notes", lines=4, elem_id=ids(TAB, "notes"))
            save = gr.Button("Save notes and tags", elem_id=ids(TAB, "save"))
    last = gr.State("")

    def load(token: str | None, choice: str | None, seen: str) -> list[Any]:
        """Everything about the run; skipped when a finished run is already on screen."""
        run_ids = parse_ids(choice)
        n_out = 2 + len(plots) + 6
        if not run_ids:
            return [gr.skip()] * n_out + [seen]
        client = studio.api(token)
        try:
            run = client.get_run(run_ids[0])
        except ApiError as exc:
            return [gr.skip(), error_text(exc, "load the run")] + [gr.skip()] * (n_out - 2) + [""]
        stamp = f"{run.id}:{run.status}:{run.step}"
        if stamp == seen and run.status not in ACTIVE:
            return [gr.skip()] * n_out + [seen]
        notes_: list[str] = []
        try:
            series = client.metrics(run.id, [], max_points=MAX_POINTS)
        except ApiError as exc:
            series = {}
            notes_.append(error_text(exc, "load metrics"))
        values = {k: [p.value for p in pts] for k, pts in series.items()}
        try:
            evals = views.evaluations_frame(client.evaluations(run.id))
        except ApiError as exc:
            evals = views.evaluations_frame([])
            if not exc.missing_endpoint:
                notes_.append(error_text(exc, "load evaluations"))
        try:
            events_ = views.events_text(client.events(run.id))
        except ApiError as exc:
            events_ = error_text(exc, "load the log")
        try:
            arts = client.artifacts(run.id)
        except ApiError:
            arts = []
        return [
            summary_markdown(run),
            "\n\n".join(notes_),
            *figures(run, series),
            views.diagnostics_markdown(views.diagnostics(run.config, values)),
            evals,
            samples_text(client, run, arts),
            events_,
            artifacts_markdown(client, run.id, arts),
            yaml.safe_dump(run.config, sort_keys=False),
            stamp,
        ]

    def load_meta(token: str | None, choice: str | None) -> tuple[Any, Any]:
        run_ids = parse_ids(choice)
        if not run_ids:
            return gr.skip(), gr.skip()
        try:
            run = studio.api(token).get_run(run_ids[0])
        except ApiError:
            return gr.skip(), gr.skip()
        return ", ".join(run.tags), run.notes or ""

    def make_diff(token: str | None, choice: str | None, against: str | None) -> Any:
        pair = parse_ids(choice)[:1] + parse_ids(against)[:1]
        if len(pair) < 2:
            return gr.skip()
        try:
            first, second = (studio.api(token).get_run(i) for i in pair)
        except ApiError as exc:
            gr.Warning(error_text(exc, "load the runs to diff"))
            return gr.skip()
        return views.config_diff(
            {f"run {first.id}": first.config, f"run {second.id}": second.config}
        )

    def act(action: str) -> Any:
        def handler(token: str | None, choice: str | None) -> str:
            run_ids = parse_ids(choice)
            if not run_ids:
                return "Pick a run first."
            client = studio.api(token)
            try:
                run = (
                    client.cancel_run(run_ids[0])
                    if action == "cancel"
                    else client.retry_run(run_ids[0])
                )
            except ApiError as exc:
                return error_text(exc, f"{action} the run")
            return f"Run {run.id}: {action} requested (status {run.status})."

        return handler

    def save_meta(token: str | None, choice: str | None, tags_: str, notes_: str) -> str:
        run_ids = parse_ids(choice)
        if not run_ids:
            return "Pick a run first."
        tag_list = [t.strip() for t in tags_.split(",") if t.strip()]
        try:
            studio.api(token).update_run(run_ids[0], tags=tag_list, notes=notes_)
        except ApiError as exc:
            return error_text(exc, "save notes and tags")
        return "Saved."

    outputs = [
        summary,
        message,
        *plots,
        diagnostics,
        evaluations,
        samples,
        log,
        artifacts,
        config,
        last,
    ]
    timer = gr.Timer(2.0)
    timer.tick(
        load,
        [studio.token, run_select, last],
        outputs,
        show_progress="hidden",
        trigger_mode="once",
    )
    run_select.change(lambda: "", None, [last]).then(
        load, [studio.token, run_select, last], outputs
    ).then(load_meta, [studio.token, run_select], [tags, notes])
    other.change(make_diff, [studio.token, run_select, other], [diff])
    cancel.click(act("cancel"), [studio.token, run_select], [message])
    retry.click(act("retry"), [studio.token, run_select], [message])
    save.click(save_meta, [studio.token, run_select, tags, notes], [message])
    return {"select": run_select, "other": other, "clone": clone, "summary": summary}
