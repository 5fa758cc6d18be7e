"""The `unisd` command line.

Core commands (train, presets, ...) live here. Service commands (serve, worker, db) belong to
the backend and workers packages and are registered through the `unisd.cli` entry-point group,
so this module never imports them (the core must not depend on the service layers).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from pydantic import ValidationError

from unisd_core.config import RunConfig, build_config
from unisd_core.replication.cli import register as register_replication

if TYPE_CHECKING:
    from unisd_core.trainer import TrainResult

app = typer.Typer(help="UniSD Studio: self-distillation runs of LLMs.", no_args_is_help=True)


def load_config_file(path: Path) -> dict[str, object]:
    if not path.is_file():
        raise typer.BadParameter(f"config file not found: {path}", param_hint="CONFIG")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise typer.BadParameter(
            f"{path} is not valid YAML/JSON: {exc}", param_hint="CONFIG"
        ) from exc
    if not isinstance(raw, dict):
        raise typer.BadParameter(
            f"{path} must hold a mapping at the top level", param_hint="CONFIG"
        )
    return raw


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "config"
        lines.append(f"  {path}: {err['msg'].removeprefix('Value error, ')}")
    return "invalid config:\n" + "\n".join(lines)


@app.command()
def train(
    config: Annotated[Path | None, typer.Argument(help="YAML or JSON RunConfig file.")] = None,
    preset: Annotated[str | None, typer.Option(help="Start from this preset.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override: dotted.path=value (repeatable).")
    ] = None,
    output: Annotated[Path, typer.Option(help="Output directory.")] = Path("outputs/run"),
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the newest checkpoint in OUTPUT.")
    ] = False,
) -> None:
    """Train locally, then evaluate; writes OUTPUT/config.yaml, metrics.jsonl, checkpoints/,
    eval/ (report.json, items.jsonl) and summary.json.

    Ctrl-C stops at the next step boundary (or, while evaluating, after the current batch of
    items) and keeps what is done; press it twice to abort. `data.evaluate_after_training: false`
    skips the evaluation.

    With `resources.gpus` N > 1 this command starts itself again as N processes under
    `accelerate launch` (one per GPU) and waits for them; rank 0 reports and evaluates.
    """
    raw = load_config_file(config) if config is not None else {}
    try:
        cfg = build_config(raw, preset=preset, overrides=set_ or [])
    except ValidationError as exc:
        typer.echo(format_validation_error(exc), err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        typer.echo(f"invalid --set: {exc}", err=True)
        raise typer.Exit(2) from None

    from unisd_core import launch

    if cfg.resources.gpus > 1 and cfg.objective != "none" and not launch.is_launched():
        raise typer.Exit(_train_on_gpus(cfg, output, resume))
    # Launched as one of several processes, only rank 0 writes files and talks to the user.
    main = launch.is_main_process()

    import signal

    from tqdm import tqdm

    from unisd_core.callbacks import JsonlSink, MetricSink
    from unisd_core.pipeline import EVAL_DIR, train_and_evaluate

    output.mkdir(parents=True, exist_ok=True)
    metrics_path = output / "metrics.jsonl"
    if main:
        (output / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
        if not resume:
            metrics_path.unlink(missing_ok=True)
    sink: MetricSink = JsonlSink(metrics_path) if main else _no_metrics
    stop_file = launch.stop_file()  # a launching `unisd train` creates it on Ctrl-C
    interrupted = {"requested": False}
    trained: list[TrainResult] = []  # set between training and evaluation

    def on_interrupt(signum: int, frame: object) -> None:
        if interrupted["requested"]:
            raise KeyboardInterrupt
        interrupted["requested"] = True
        where = "the current batch of eval items" if trained else "this step"
        typer.echo(f"\nstopping after {where} (Ctrl-C again to abort)", err=True)

    def stop_requested() -> bool:
        return interrupted["requested"] or (stop_file is not None and stop_file.exists())

    previous = signal.signal(signal.SIGINT, on_interrupt)
    bar = tqdm(
        total=cfg.train.max_steps, desc="training", unit="step", file=sys.stderr, disable=not main
    )

    def progress_sink(step: int, metrics: Mapping[str, float]) -> None:
        sink(step, metrics)
        if not trained:
            bar.n = step
            bar.set_postfix(loss=f"{metrics.get('loss/total', float('nan')):.4f}", refresh=False)
            bar.refresh()

    def on_trained(result: TrainResult) -> None:
        trained.append(result)
        bar.close()
        if cfg.data.evaluate_after_training and not result.stopped_early and main:
            typer.echo(f"trained {result.steps_completed} steps; evaluating", err=True)

    try:
        outcome = train_and_evaluate(
            cfg,
            progress_sink,
            stop_requested,
            output_dir=output,
            resume_from=output if resume else None,
            on_trained=on_trained,
        )
    except (OSError, ValueError, RuntimeError, NotImplementedError) as exc:
        if not trained or not main:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        # Training finished and its checkpoint is saved: keep its summary, say how to retry.
        _write_summary(output, cfg, trained[0], eval_error=f"{type(exc).__name__}: {exc}")
        typer.echo(
            f"evaluation failed: {exc}\nthe trained model is in {output}; evaluate it with "
            f"`unisd eval {output} --output {output / EVAL_DIR}`",
            err=True,
        )
        raise typer.Exit(1) from None
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous)
    if not main:
        return
    result = outcome.train
    report_path = outcome.eval_dir / "report.json" if outcome.eval_dir is not None else None
    _write_summary(
        output,
        cfg,
        result,
        eval_report=report_path,
        eval_metrics=outcome.eval_report["flat"] if outcome.eval_report else None,
        eval_seconds=outcome.eval_seconds,
    )
    if outcome.eval_report is not None:
        for benchmark, metrics in outcome.eval_report["metrics"].items():
            shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            typer.echo(f"{benchmark}: {shown}")
    if result.stopped_early:
        state = "stopped"
    elif outcome.eval_stopped:
        state = "stopped before the evaluation finished"
    else:
        state = "done"
    where = f"metrics in {metrics_path}"
    if report_path is not None:
        where += f", eval report in {report_path}"
    typer.echo(f"{state}: {result.steps_completed} steps; {where}")


def _no_metrics(step: int, metrics: Mapping[str, float]) -> None:
    """The sink of ranks other than 0: the trainer reports on rank 0 only anyway."""


#: Created in OUTPUT by a launching `unisd train` on Ctrl-C; its processes stop when they see it.
STOP_REQUEST_FILE = ".stop-requested"


def _train_on_gpus(cfg: RunConfig, output: Path, resume: bool) -> int:
    """`unisd train` on several GPUs: this command again, as one process per GPU under
    `accelerate launch`, waited for here; returns their exit status.

    The processes run in a session of their own: a terminal Ctrl-C would reach the launcher too,
    which kills its processes at once. Instead the first Ctrl-C here creates a stop file that
    every process polls (they stop together at the next step boundary and checkpoint) and the
    second one ends the launch.
    """
    import contextlib
    import os
    import signal
    import subprocess

    from unisd_core import distributed, launch

    gpus = cfg.resources.gpus
    visible = distributed.visible_gpus()
    if visible < gpus:
        typer.echo(
            f"error: resources.gpus is {gpus} but {visible} GPU(s) are visible here; on a "
            f"machine with {gpus} GPUs run this again, or launch by hand: "
            f"{launch.train_hint(gpus)}",
            err=True,
        )
        return 1
    output.mkdir(parents=True, exist_ok=True)
    config_file = output / "config.yaml"
    config_file.write_text(cfg.to_yaml(), encoding="utf-8")
    if not resume:
        (output / "metrics.jsonl").unlink(missing_ok=True)
    stop_file = output / STOP_REQUEST_FILE
    stop_file.unlink(missing_ok=True)  # left by an earlier launch: it must not stop this one
    command = launch.train_command(
        config_file, output, gpus=gpus, resume=resume, main_process_port=launch.free_port()
    )
    typer.echo(f"training on {gpus} GPUs: {launch.shell_line(command)}", err=True)
    process = subprocess.Popen(
        command, env={**os.environ, launch.STOP_FILE_ENV: str(stop_file)}, start_new_session=True
    )
    presses = {"n": 0}

    def on_interrupt(signum: int, frame: object) -> None:
        presses["n"] += 1
        if presses["n"] == 1:
            stop_file.touch()
            typer.echo("\nstopping after this step (Ctrl-C again to abort)", err=True)
        else:
            with contextlib.suppress(ProcessLookupError):  # it may just have exited
                os.killpg(process.pid, signal.SIGTERM)  # the launcher ends its processes

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        return process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        stop_file.unlink(missing_ok=True)


def _write_summary(
    output: Path,
    cfg: RunConfig,
    result: TrainResult,
    *,
    eval_report: Path | None = None,
    eval_metrics: Mapping[str, float] | None = None,
    eval_seconds: float | None = None,
    eval_error: str | None = None,
) -> None:
    summary: dict[str, object] = {
        "steps_completed": result.steps_completed,
        "stopped_early": result.stopped_early,
        "config_hash": cfg.config_hash(),
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        **result.info,
        "eval_report": str(eval_report) if eval_report is not None else None,
        "eval": dict(eval_metrics) if eval_metrics is not None else None,
        "eval_seconds": round(eval_seconds, 2) if eval_seconds is not None else None,
    }
    if eval_error is not None:
        summary["eval_error"] = eval_error
    (output / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")


@app.command()
def presets() -> None:
    """List the built-in presets."""
    from unisd_core.presets import PRESET_DESCRIPTIONS, PRESETS

    for name in PRESETS:
        typer.echo(f"{name:12s} {PRESET_DESCRIPTIONS.get(name, '')}")


@app.command("analyze")
def analyze(
    source: Annotated[Path, typer.Argument(help="Table of runs: CSV, JSONL or Parquet file.")],
    output: Annotated[Path, typer.Option(help="Output directory.")] = Path("outputs/analysis"),
    response: Annotated[
        str | None, typer.Option(help="Metric column to analyse (default: every metric).")
    ] = None,
    factor: Annotated[
        list[str] | None, typer.Option(help="Factor column (repeatable; default: detected).")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Configuration to compare against (default: base).")
    ] = None,
    confidence: Annotated[float, typer.Option(help="Confidence level of intervals.")] = 0.95,
) -> None:
    """Effects, interactions, paired tests and summaries of a table of runs (CSV + LaTeX + JSON)."""
    from unisd_core.analysis import AnalysisError
    from unisd_core.analysis.cli import analyze as run_analysis

    try:
        summary = run_analysis(
            source, output, response, factors=factor, reference=reference, confidence=confidence
        )
    except AnalysisError as exc:
        typer.echo(f"cannot analyse {source}: {exc}", err=True)
        raise typer.Exit(2) from None
    for note in summary["notes"]:
        typer.echo(f"note: {note}")
    typer.echo(f"done: {len(summary['files'])} files in {output}")


@app.command("eval")
def eval_(
    config_or_run_dir: Annotated[
        Path | None,
        typer.Argument(help="Run dir, checkpoint dir or RunConfig file (omit: evaluate --model)."),
    ] = None,
    benchmarks: Annotated[
        list[str] | None,
        typer.Option(help="Benchmarks (repeatable or comma-separated; default: from the config)."),
    ] = None,
    output: Annotated[Path, typer.Option(help="Output directory.")] = Path("outputs/eval"),
    model: Annotated[
        str | None, typer.Option(help="Evaluate this model (HF id, path or builtin:...).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most N items per benchmark.")] = None,
    batch_size: Annotated[int, typer.Option(help="Generation batch size.")] = 8,
    source: Annotated[
        str | None, typer.Option(help="Data source: bundled, local:<dir> or hf.")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Split (default: each benchmark's eval split).")
    ] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Generation budget per item.")] = None,
    max_prompt_length: Annotated[int | None, typer.Option(help="Prompt token limit.")] = None,
    likelihoods: Annotated[
        bool, typer.Option(help="Also score gold-completion and retention perplexities.")
    ] = True,
    fresh: Annotated[bool, typer.Option(help="Discard earlier results in OUTPUT.")] = False,
    engine: Annotated[
        str,
        typer.Option(help="Generation engine: auto (vLLM when installed and on CUDA), hf, vllm."),
    ] = "auto",
) -> None:
    """Evaluate a checkpoint or a base model; writes OUTPUT/report.json and OUTPUT/items.jsonl."""
    from unisd_core.data import DataError
    from unisd_core.evaluation.cli import EvalSetupError, run_eval

    names = [b.strip() for entry in benchmarks or [] for b in entry.split(",") if b.strip()]
    try:
        report = run_eval(
            config_or_run_dir,
            names,
            output,
            model,
            limit,
            batch_size,
            source=source,
            split=split,
            max_new_tokens=max_new_tokens,
            max_prompt_length=max_prompt_length,
            likelihoods=likelihoods,
            fresh=fresh,
            engine=engine,  # type: ignore[arg-type]  # run_eval names the field when it is wrong
        )
    except (EvalSetupError, DataError) as exc:
        typer.echo(f"cannot evaluate: {exc}", err=True)
        raise typer.Exit(2) from None
    for benchmark, metrics in report["metrics"].items():
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        typer.echo(f"{benchmark}: {shown}")
    typer.echo(f"done: report in {output / 'report.json'}")


# Replication commands are core commands kept in their own module (they are long).
register_replication(app)


def _register_plugins() -> None:
    for entry in entry_points(group="unisd.cli"):
        entry.load()(app)


def main() -> None:
    _register_plugins()
    app()


__all__ = ["RunConfig", "app", "main"]

if __name__ == "__main__":
    main()
