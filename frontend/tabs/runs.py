"""Runs: a self-refreshing table, filters, selection, cancel/retry/delete with confirmation."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from frontend.client import ApiError, Run
from frontend.context import Studio, error_text
from frontend.views import filter_runs, parse_ids, run_label, runs_frame
from unisd_core.config import BENCHMARKS, COMPONENTS
from unisd_core.presets import PRESETS

TAB = "runs"
STATUSES = ("", "queued", "running", "succeeded", "failed", "cancelled")
REFRESH_S = 2.0
#: Latest values shown in the table: the total loss and the built-in benchmarks' accuracy.
LATEST_KEYS = "loss/total," + ",".join(f"eval/{b}/accuracy" for b in BENCHMARKS)
ACTIONS = {"cancel": "Cancel", "retry": "Retry", "delete": "Delete"}


def choices(runs: list[Run]) -> list[str]:
    return [f"#{run.id} {run.name or run.preset or ''}".strip() for run in runs]


def build(studio: Studio) -> dict[str, Any]:
    ids = studio.ids
    with gr.Row():
        status = gr.Dropdown(list(STATUSES), value="", label="Status", elem_id=ids(TAB, "status"))
        preset = gr.Dropdown(
            ["", *sorted(PRESETS)], value="", label="Preset", elem_id=ids(TAB, "preset")
        )
        component = gr.Dropdown(
            ["", *COMPONENTS], value="", label="Component on", elem_id=ids(TAB, "component")
        )
        search = gr.Textbox(label="Search (id, name, model, tag)", elem_id=ids(TAB, "search"))
    table = gr.Dataframe(
        value=runs_frame([]),
        label="Runs (refreshes every 2 s; click a row to select it)",
        interactive=False,
        wrap=True,
        elem_id=ids(TAB, "table"),
    )
    message = gr.Markdown(elem_id=ids(TAB, "message"))
    with gr.Row():
        selected = gr.Dropdown(
            [],
            multiselect=True,
            label="Selected runs",
            allow_custom_value=True,
            elem_id=ids(TAB, "selected"),
            scale=3,
        )
        open_button = gr.Button("Open", elem_id=ids(TAB, "open"))
        compare_button = gr.Button("Compare", variant="primary", elem_id=ids(TAB, "compare"))
        cancel_button = gr.Button("Cancel", variant="stop", elem_id=ids(TAB, "cancel"))
        retry_button = gr.Button("Retry", elem_id=ids(TAB, "retry"))
        delete_button = gr.Button("Delete", variant="stop", elem_id=ids(TAB, "delete"))
    pending = gr.State("")
    with gr.Row(visible=False, elem_id=ids(TAB, "confirm-row")) as confirm_row:
        confirm_text = gr.Markdown(elem_id=ids(TAB, "confirm-text"))
        confirm = gr.Button("Yes, do it", variant="stop", elem_id=ids(TAB, "confirm"))
        back = gr.Button("No, keep them", elem_id=ids(TAB, "back"))

    def refresh(
        token: str | None, status_: str, preset_: str, component_: str, text: str, shown: Any
    ) -> tuple[Any, Any, str, Any]:
        """The table; the picker's choices only when the list of runs changed.

        The picker's value is never sent back: a refresh must not undo what the user just picked.
        """
        try:
            runs = studio.api(token).list_runs(status=status_ or None, latest=LATEST_KEYS)
        except ApiError as exc:
            return gr.skip(), gr.skip(), error_text(exc, "list runs"), gr.skip()
        runs = filter_runs(runs, preset=preset_, component=component_, text=text)
        frame: pd.DataFrame = runs_frame(runs)
        labels = choices(runs)
        if labels == shown:
            return frame, gr.skip(), "", gr.skip()
        return frame, gr.Dropdown(choices=labels), "", labels

    def pick_row(chosen: list[str] | None, event: gr.SelectData) -> Any:
        row = event.row_value if event.row_value is not None else []
        if not row:
            return gr.skip()
        current = list(chosen or [])
        label = f"#{row[0]} {row[1] or row[9] or ''}".strip()
        if int(row[0]) in parse_ids(current):
            return gr.skip()
        return [*current, label]

    def ask(action: str) -> Any:
        def handler(chosen: list[str] | None) -> tuple[Any, str, str]:
            run_ids = parse_ids(chosen)
            if not run_ids:
                return gr.Row(visible=False), "", ""
            names = ", ".join(f"#{i}" for i in run_ids)
            text = f"**{ACTIONS[action]} run(s) {names}?**"
            if action == "delete":
                text += " Their metrics and artifacts are removed for good."
            return gr.Row(visible=True), text, action

        return handler

    def act(token: str | None, action: str, chosen: list[str] | None) -> tuple[Any, str]:
        client = studio.api(token)
        done, problems = [], []
        for run_id in parse_ids(chosen):
            try:
                if action == "cancel":
                    client.cancel_run(run_id)
                elif action == "retry":
                    client.retry_run(run_id)
                elif action == "delete":
                    client.delete_run(run_id)
                done.append(f"#{run_id}")
            except ApiError as exc:
                problems.append(f"#{run_id}: {error_text(exc, action)}")
        text = f"{ACTIONS.get(action, action)}: {', '.join(done) or 'nothing'}."
        if problems:
            text += "\n\n" + "\n\n".join(problems)
        return gr.Row(visible=False), text

    filters = [status, preset, component, search]
    shown = gr.State([])
    refresh_inputs = [studio.token, *filters, shown]
    refresh_outputs = [table, selected, message, shown]
    timer = gr.Timer(REFRESH_S)
    timer.tick(
        refresh, refresh_inputs, refresh_outputs, show_progress="hidden", trigger_mode="once"
    )
    gr.on(
        [status.change, preset.change, component.change, search.change],
        refresh,
        refresh_inputs,
        refresh_outputs,
        show_progress="hidden",
    )
    table.select(pick_row, [selected], [selected])
    for action, button in (
        ("cancel", cancel_button),
        ("retry", retry_button),
        ("delete", delete_button),
    ):
        button.click(ask(action), [selected], [confirm_row, confirm_text, pending])
    confirm.click(act, [studio.token, pending, selected], [confirm_row, message]).then(
        refresh, refresh_inputs, refresh_outputs
    )
    back.click(lambda: gr.Row(visible=False), None, [confirm_row])
    return {
        "table": table,
        "selected": selected,
        "open": open_button,
        "compare": compare_button,
        "refresh": refresh,
        "refresh_inputs": refresh_inputs,
        "refresh_outputs": refresh_outputs,
        "message": message,
        "run_label": run_label,
    }
