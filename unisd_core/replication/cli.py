"""`unisd replicate` (queue the paper-table template, or run it here) and `unisd replicate-report`.

Queueing talks to a running server over its REST API (`POST /api/v1/sweeps` with
`template: paper-table`); `--local DIR` runs every cell in this process instead, resumably.
The report reads a local replication folder or a sweep on a server (`sweep:ID`).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from unisd_core.templates import PAPER_METHODS, PaperTableOptions, paper_table

DEFAULT_API = "http://127.0.0.1:8000"


def _options(
    model: str,
    budget: str,
    seeds: int,
    methods: str | None,
    benchmarks: str | None,
    source: str,
    max_steps: int | None,
    max_train_examples: int | None,
    max_eval_examples: int | None,
    device: str,
) -> PaperTableOptions:
    raw: dict[str, Any] = {
        "model": model,
        "budget": budget,
        "seeds": seeds,
        "source": source,
        "max_steps": max_steps,
        "max_train_examples": max_train_examples,
        "max_eval_examples": max_eval_examples,
        "device": device,
    }
    if methods:
        raw["methods"] = [m.strip() for m in methods.split(",") if m.strip()]
    if benchmarks:
        raw["benchmarks"] = [b.strip() for b in benchmarks.split(",") if b.strip()]
    try:
        return PaperTableOptions.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'.'.join(str(p) for p in e['loc']).replace('_', '-')}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise typer.BadParameter(problems) from None


def _api_client(api: str, token: str | None) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=api.rstrip("/") + "/api/v1", headers=headers, timeout=60.0)


def _api_error(response: Any) -> str:
    try:
        error = response.json()["error"]
        fields = "; ".join(f"{f['path']}: {f['message']}" for f in error.get("fields") or [])
        return f"{response.status_code} {error['message']}" + (f" ({fields})" if fields else "")
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.text[:300]}"


def register(app: typer.Typer) -> None:
    @app.command()
    def replicate(
        model: Annotated[str, typer.Option(help="Model (HF id, path, builtin:...).")] = (
            "builtin:smollm2-135m-instruct"
        ),
        budget: Annotated[str, typer.Option(help="small (fits a CPU) or paper.")] = "small",
        seeds: Annotated[int, typer.Option(help="Seeds per cell (0..N-1).")] = 3,
        methods: Annotated[
            str | None,
            typer.Option(help=f"Comma-separated rows (default: all of {PAPER_METHODS})."),
        ] = None,
        benchmarks: Annotated[
            str | None, typer.Option(help="Comma-separated training benchmarks (default: all 4).")
        ] = None,
        source: Annotated[str, typer.Option(help="bundled, local:<dir> or hf.")] = "bundled",
        max_steps: Annotated[int | None, typer.Option(help="Override the budget's steps.")] = None,
        max_train_examples: Annotated[
            int | None, typer.Option(help="Override the budget's training examples.")
        ] = None,
        max_eval_examples: Annotated[
            int | None, typer.Option(help="Override the budget's evaluation items.")
        ] = None,
        device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
        local: Annotated[
            Path | None, typer.Option(help="Run every cell here, into this folder (resumable).")
        ] = None,
        shard: Annotated[
            str, typer.Option(help="With --local: run the i-th of n interleaved parts (i/n).")
        ] = "1/1",
        seed_major: Annotated[
            bool, typer.Option(help="With --local: every method on seed 0 first, then seed 1...")
        ] = False,
        api: Annotated[str, typer.Option(envvar="UNISD_API_URL", help="Server to queue on.")] = (
            DEFAULT_API
        ),
        token: Annotated[
            str | None, typer.Option(envvar="UNISD_API_TOKEN", help="API token (auth on).")
        ] = None,
        name: Annotated[str | None, typer.Option(help="Sweep name.")] = None,
        dry_run: Annotated[bool, typer.Option(help="Print the plan; queue nothing.")] = False,
    ) -> None:
        """Queue the paper-table template (methods x benchmarks x seeds) or run it with --local."""
        options = _options(
            model, budget, seeds, methods, benchmarks, source, max_steps,
            max_train_examples, max_eval_examples, device,
        )  # fmt: skip
        runs = paper_table(options)
        if dry_run:
            for run in runs:
                typer.echo(
                    f"{run.label} seed {run.seed}: evaluates {', '.join(run.eval_benchmarks)}"
                )
            typer.echo(f"{len(runs)} runs")
            return
        if local is not None:
            from unisd_core.replication.local import ReplicationSetupError, run_local

            part, _, parts = shard.partition("/")
            if not (part.isdigit() and parts.isdigit()):
                raise typer.BadParameter("expected i/n, e.g. 1/2", param_hint="--shard")
            try:
                table = run_local(
                    options,
                    local,
                    shard=(int(part), int(parts)),
                    seed_major=seed_major,
                    log=typer.echo,
                )
            except ReplicationSetupError as exc:
                typer.echo(f"cannot replicate: {exc}", err=True)
                raise typer.Exit(2) from None
            typer.echo(f"done: {len(table)} rows in {local / 'runs.csv'}")
            return
        body = {
            "name": name or f"paper-table {options.budget} {options.model}",
            "template": "paper-table",
            "template_options": options.model_dump(mode="json"),
        }
        import httpx

        try:
            with _api_client(api, token) as client:
                response = client.post("/sweeps", json=body)
        except httpx.HTTPError as exc:
            typer.echo(
                f"cannot reach the server at {api}: {exc} (start it with `unisd serve`)", err=True
            )
            raise typer.Exit(2) from None
        if response.status_code != 201:
            typer.echo(f"the server refused the sweep: {_api_error(response)}", err=True)
            raise typer.Exit(2)
        sweep = response.json()
        typer.echo(
            f"queued sweep {sweep['id']}: {sweep['run_count']} runs, "
            f"~{sweep['estimated_gpu_hours']:.2f} GPU-hours; "
            f"report later with `unisd replicate-report sweep:{sweep['id']}`"
        )

    @app.command("replicate-report")
    def replicate_report(
        source: Annotated[
            str, typer.Argument(help="A `unisd replicate --local` folder, or sweep:ID on --api.")
        ],
        output: Annotated[Path, typer.Option(help="Markdown file to write.")] = Path(
            "outputs/replication/report.md"
        ),
        figures: Annotated[
            Path | None, typer.Option(help="Figure folder (default: OUTPUT's folder/figures).")
        ] = None,
        title: Annotated[str, typer.Option(help="Report title.")] = "Paper-table replication",
        api: Annotated[str, typer.Option(envvar="UNISD_API_URL", help="Server of sweep:ID.")] = (
            DEFAULT_API
        ),
        token: Annotated[
            str | None, typer.Option(envvar="UNISD_API_TOKEN", help="API token.")
        ] = None,
        notes: Annotated[
            Path | None, typer.Option(help="Markdown file of your own remarks, printed as such.")
        ] = None,
    ) -> None:
        """Write the replication report (Markdown + PNG figures) from finished runs."""
        from unisd_core.analysis import AnalysisError
        from unisd_core.analysis.paper import paper_table as build_table
        from unisd_core.replication.report import build_report, column_order, write_figures

        data = _report_input(source, api, token)
        if notes is not None:
            if not notes.is_file():
                raise typer.BadParameter(f"no such file: {notes}", param_hint="--notes")
            data.notes = notes.read_text(encoding="utf-8")
        if data.table.empty:
            typer.echo(f"cannot report: {source} has no evaluated runs yet", err=True)
            raise typer.Exit(2)
        folder = figures or output.parent / "figures"
        try:
            columns = column_order(data.table, data.options.get("benchmarks", ()))
            result = build_table(data.table, columns=columns)
            written, figure_notes = write_figures(result, folder)
            links = {
                caption: os.path.relpath(written[key], output.parent)
                for key, caption in (
                    ("heatmap", "Gain heatmap (methods x benchmarks)"),
                    ("pareto", "Score vs retention PPL"),
                    ("forest", "Forest plot of overall gains"),
                )
                if key in written
            }
            text = build_report(data, links, title)
        except AnalysisError as exc:
            typer.echo(f"cannot report: {exc}", err=True)
            raise typer.Exit(2) from None
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        for note in figure_notes:
            typer.echo(f"note: {note}")
        typer.echo(f"done: {output} and {len(written)} figures in {folder}")


def _environment() -> dict[str, str]:
    import importlib.metadata as md

    info = {"python": platform.python_version(), "cpus": str(os.cpu_count())}
    for package in ("torch", "transformers", "peft"):
        with contextlib.suppress(md.PackageNotFoundError):
            info[package] = md.version(package)
    return info


def _report_input(source: str, api: str, token: str | None) -> Any:
    from unisd_core.replication.collect import CELL_FILE, collect_local, table_from_rows
    from unisd_core.replication.local import OPTIONS_FILE
    from unisd_core.replication.report import ReportInput

    if source.startswith("sweep:"):
        sweep_id = source.removeprefix("sweep:")
        with _api_client(api, token) as client:
            response = client.get(f"/sweeps/{sweep_id}/table")
        if response.status_code != 200:
            typer.echo(f"cannot read sweep {sweep_id}: {_api_error(response)}", err=True)
            raise typer.Exit(2)
        payload = response.json()
        options = PaperTableOptions.model_validate(payload["template_options"])
        return ReportInput(
            table=table_from_rows(payload["rows"]),
            items=[],
            options=options.model_dump(mode="json"),
            budget=options.resolved_budget().model_dump(mode="json"),
            command=f"unisd replicate-report {source} --api {api}",
        )
    root = Path(source)
    if not (root / OPTIONS_FILE).is_file():
        typer.echo(f"cannot report: {root} is not a `unisd replicate --local` folder", err=True)
        raise typer.Exit(2)
    options = PaperTableOptions.model_validate(
        json.loads((root / OPTIONS_FILE).read_text(encoding="utf-8"))
    )
    table, items = collect_local(root)
    finished = [p.stat().st_mtime for p in (root / "runs").glob(f"*/{CELL_FILE}")]
    started = (root / OPTIONS_FILE).stat().st_mtime
    command = " ".join(
        ["unisd replicate", f"--model {options.model}", f"--budget {options.budget}",
         f"--seeds {len(options.seed_list)}", f"--methods {','.join(options.methods)}",
         f"--benchmarks {','.join(options.benchmarks)}", f"--source {shlex.quote(options.source)}",
         f"--local {root}"]
        + [f"--{k.replace('_', '-')} {v}" for k in ("max_steps", "max_train_examples",
           "max_eval_examples") if (v := getattr(options, k)) is not None]
    )  # fmt: skip
    return ReportInput(
        table=table,
        items=items,
        options=options.model_dump(mode="json"),
        budget=options.resolved_budget().model_dump(mode="json"),
        environment=_environment(),
        command=command,
        wall_seconds=max(finished) - started if finished else None,
    )


__all__ = ["register"]
