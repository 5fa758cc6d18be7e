"""New run: a form generated from RunConfig, preset picker, live YAML, estimate, submit, clone."""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend import forms
from frontend.client import ApiError
from frontend.context import Studio, error_text
from frontend.forms import SPECS, FieldSpec
from frontend.views import parse_ids
from unisd_core.config import BUILTIN_MODELS, COMPONENTS
from unisd_core.presets import PRESET_DESCRIPTIONS, PRESETS

TAB = "new"
DEFAULT_PRESET = "sft"
#: Form groups shown open, in this order, before the five components; the rest follow closed.
OPEN_BLOCKS = ("model", "data", "run")
LATER_BLOCKS = ("train", "divergence", "resources")
BLOCK_TITLES = {"run": "Run", "feature_matching": "Feature matching"}


def _input(spec: FieldSpec, value: Any, elem_id: str) -> gr.components.Component:
    info = spec.description or None
    if spec.path == "model.name_or_path":
        return gr.Dropdown(
            list(BUILTIN_MODELS),
            value=value,
            allow_custom_value=True,
            label="base model (built-in, HF id or local path)",
            info=info,
            elem_id=elem_id,
        )
    if spec.kind == "bool":
        parent = spec.path.split(".")[-2] if "." in spec.path else ""
        label = f"enable {parent.replace('_', ' ')}" if spec.name == "enabled" else spec.label
        return gr.Checkbox(value=value, label=label, info=info, elem_id=elem_id)
    if spec.kind == "choice":
        choices = list(spec.choices) + ([""] if spec.optional else [])
        return gr.Dropdown(choices, value=value, label=spec.label, info=info, elem_id=elem_id)
    if spec.kind == "multichoice":
        return gr.Dropdown(
            list(spec.choices),
            value=value,
            multiselect=True,
            label=spec.label,
            info=info,
            elem_id=elem_id,
        )
    if spec.kind in ("int", "float") and spec.optional:
        return gr.Textbox(
            value=value,
            label=f"{spec.label} (optional)",
            info=info,
            placeholder="empty: not set",
            elem_id=elem_id,
        )
    if spec.kind in ("int", "float"):
        return gr.Number(
            value=value,
            label=spec.label,
            info=info,
            precision=0 if spec.kind == "int" else None,
            step=1 if spec.kind == "int" else 0.001,
            elem_id=elem_id,
        )
    return gr.Textbox(
        value=value,
        label=spec.label + (" (comma-separated)" if spec.kind == "list" else ""),
        info=info,
        elem_id=elem_id,
    )


def _title(block: str) -> str:
    return BLOCK_TITLES.get(block, block.replace("_", " ").capitalize())


def build(studio: Studio) -> dict[str, Any]:
    ids = studio.ids
    start = forms.values_from_preset(DEFAULT_PRESET)
    fields: dict[str, gr.components.Component] = {}

    def add(spec: FieldSpec) -> None:
        if spec.path in fields:
            return
        fields[spec.path] = _input(spec, start[spec.path], ids("field", spec.path))

    by_block: dict[str, list[FieldSpec]] = {}
    for spec in SPECS:
        by_block.setdefault(spec.block, []).append(spec)

    def section(block: str, open_: bool) -> None:
        with gr.Accordion(_title(block), open=open_):
            gr.Markdown(forms.block_description(block))
            with gr.Row(equal_height=False):
                for spec in by_block[block]:
                    if spec.path not in fields and not spec.path.startswith("model.lora."):
                        add(spec)

    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                preset = gr.Dropdown(
                    sorted(PRESETS),
                    value=DEFAULT_PRESET,
                    label="Preset (fills the form)",
                    elem_id=ids(TAB, "preset"),
                )
                clone_from = gr.Dropdown(
                    [],
                    label="Clone from run",
                    allow_custom_value=True,
                    elem_id=ids(TAB, "clone-from"),
                )
                clone_button = gr.Button("Load run's config", elem_id=ids(TAB, "clone"))
            preset_note = gr.Markdown(
                PRESET_DESCRIPTIONS.get(DEFAULT_PRESET, ""), elem_id=ids(TAB, "preset-note")
            )
            for block in [b for b in OPEN_BLOCKS if b in by_block]:
                section(block, True)
            with gr.Accordion("Components (UniSD)", open=True):
                for component in COMPONENTS:
                    with gr.Group(elem_id=ids(TAB, f"panel-{component}")):
                        gr.Markdown(
                            f"**{_title(component)}**: {forms.block_description(component)}"
                        )
                        specs = by_block.get(component, [])
                        for spec in specs:
                            if spec.name == "enabled":
                                add(spec)
                        with gr.Row(equal_height=False):
                            for spec in specs:
                                add(spec)
            for block in [b for b in LATER_BLOCKS if b in by_block]:
                section(block, block == "train")
            with gr.Accordion("LoRA", open=False), gr.Row(equal_height=False):
                for spec in SPECS:
                    if spec.path.startswith("model.lora."):
                        add(spec)
            for block in by_block:  # blocks a future config adds land here
                if any(spec.path not in fields for spec in by_block[block]):
                    section(block, False)
        with gr.Column(scale=2):
            errors = gr.Markdown(elem_id=ids(TAB, "errors"))
            estimate = gr.Markdown(elem_id=ids(TAB, "estimate"))
            submit = gr.Button("Submit run", variant="primary", elem_id=ids(TAB, "submit"))
            status = gr.Markdown(elem_id=ids(TAB, "status"))
            yaml_view = gr.Code(
                language="yaml",
                label="Resolved config (YAML, editable)",
                interactive=True,
                lines=20,
                max_lines=40,
                elem_id=ids(TAB, "yaml"),
            )
            apply_yaml = gr.Button("Apply YAML to the form", elem_id=ids(TAB, "apply-yaml"))
            yaml_status = gr.Markdown(elem_id=ids(TAB, "yaml-status"))

    inputs = [fields[path] for path in forms.PATHS]

    def values_of(args: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(forms.PATHS, args, strict=False))

    def review(preset_name: str, *args: Any) -> tuple[str, str, str]:
        values = values_of(args)
        payload = forms.config_from_values(values, preset_name)
        return (
            forms.errors_markdown(forms.field_errors(payload)),
            forms.estimate(payload).markdown(),
            forms.yaml_from_values(values, preset_name),
        )

    def fill_preset(preset_name: str, *args: Any) -> list[Any]:
        values = forms.values_from_preset(preset_name, values_of(args))
        return [PRESET_DESCRIPTIONS.get(preset_name, "")] + [values[p] for p in forms.PATHS]

    def from_yaml(text: str) -> list[Any]:
        values, preset_name, problem = forms.values_from_yaml(text)
        if values is None:
            return [f"**YAML not applied:**: {problem}", gr.skip()] + [gr.skip() for _ in inputs]
        return ["YAML applied to the form.", preset_name or gr.skip()] + [
            values[p] for p in forms.PATHS
        ]

    def clone(token: str | None, choice: str | None) -> list[Any]:
        run_ids = parse_ids(choice)
        if not run_ids:
            return ["Pick a run to clone.", gr.skip()] + [gr.skip() for _ in inputs]
        try:
            run = studio.api(token).get_run(run_ids[0])
        except ApiError as exc:
            return [error_text(exc, "load the run"), gr.skip()] + [gr.skip() for _ in inputs]
        values = forms.values_from_config(run.config)
        return [f"Loaded the config of run {run.id}; edit and submit.", run.preset or gr.skip()] + [
            values[p] for p in forms.PATHS
        ]

    def do_submit(token: str | None, preset_name: str, *args: Any) -> str:
        payload = forms.config_from_values(values_of(args), preset_name)
        problem = forms.field_errors(payload)
        if problem:
            return "**Not submitted.**\n\n" + forms.errors_markdown(problem)
        try:
            run = studio.api(token).create_run(payload)
        except ApiError as exc:
            return f"**Not submitted.** {error_text(exc, 'submit the run')}"
        return f"Run **{run.id}** queued. [Open it](?run={run.id})"

    review_out = [errors, estimate, yaml_view]
    # One listener for every field: a preset that changes 50 fields costs at most two reviews.
    gr.on(
        [c.change for c in inputs if hasattr(c, "change")],
        review,
        [preset, *inputs],
        review_out,
        show_progress="hidden",
        trigger_mode="always_last",
        concurrency_limit=1,
    )
    preset.input(fill_preset, [preset, *inputs], [preset_note, *inputs])
    apply_yaml.click(from_yaml, [yaml_view], [yaml_status, preset, *inputs])
    submit.click(do_submit, [studio.token, preset, *inputs], [status])
    return {
        "preset": preset,
        "fields": fields,
        "inputs": inputs,
        "clone_from": clone_from,
        "clone_button": clone_button,
        "clone": clone,
        "review": review,
        "review_out": review_out,
        "yaml": yaml_view,
        "yaml_status": yaml_status,
        "errors": errors,
        "status": status,
        "submit": submit,
    }
