"""One run from start to finish: train, then evaluate the result. The CLI and the worker share it.

`train_and_evaluate` trains with `unisd_core.trainer.train` into `output_dir` and, unless the run
was stopped or `data.evaluate_after_training` is off, evaluates the final model with
`unisd_core.evaluation.cli.run_eval` into `output_dir/eval`: the latest checkpoint with its LoRA
adapters applied (retention against the base with adapters disabled), or the base model itself
when there is no checkpoint (`objective: none`, the `base` preset). The flat evaluation metrics
(`eval/<benchmark>/<metric>`, `retention/ppl`) then go to the sink at the run's final step, so
they land in the same metric store as the training curves.

An interrupted evaluation resumes: finished items stay in `eval/items.jsonl` and a second call
(after the trainer has found its final checkpoint and done nothing) only evaluates the rest.

In a multi-GPU run every process calls `train_and_evaluate`; the trainer returns on all of them
only once rank 0 has written the final checkpoint, then rank 0 alone evaluates (on its GPU) while
the others return without an evaluation.

Torch is imported lazily (through the trainer and the evaluator) so that importing this module
stays cheap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from unisd_core import launch
from unisd_core.callbacks import MetricSink, StopSignal, never_stop
from unisd_core.config import RunConfig

if TYPE_CHECKING:
    from unisd_core.trainer import TrainResult

CONFIG_FILE = "config.yaml"
EVAL_DIR = "eval"
#: Every run is evaluated with this seed, whatever its training seed: items are drawn and answer
#: options shuffled identically for every method and every seed, so two runs' per-item results
#: pair up one to one and paired comparisons (method A vs B on the same items) are valid.
EVAL_SEED = 42


@dataclass(frozen=True)
class PipelineResult:
    train: TrainResult
    eval_report: dict[str, Any] | None
    eval_dir: Path | None
    #: Wall time of the evaluation, model loading included (None when it did not run).
    eval_seconds: float | None = None
    #: A stop request arrived after the last training step (or during the evaluation), so the
    #: evaluation was skipped or left unfinished; `unisd eval OUTPUT_DIR` completes it.
    eval_stopped: bool = False

    @property
    def stopped_early(self) -> bool:
        return self.train.stopped_early or self.eval_stopped

    @property
    def benchmarks(self) -> list[str]:
        return sorted(self.eval_report["metrics"]) if self.eval_report else []


def train_and_evaluate(
    cfg: RunConfig,
    sink: MetricSink,
    stop: StopSignal = never_stop,
    *,
    output_dir: Path,
    resume_from: Path | str | None = None,
    on_trained: Callable[[TrainResult], None] | None = None,
) -> PipelineResult:
    """Train `cfg` into `output_dir`, then evaluate the final model (see the module docstring).

    `on_trained` is called between the two phases (after training, before evaluation starts):
    the worker registers the checkpoint and logs there, so a long evaluation never hides them.
    """
    from unisd_core import trainer  # looked up at call time: torch loads only when training

    main = launch.is_main_process()
    output_dir.mkdir(parents=True, exist_ok=True)
    if main:
        write_config(cfg, output_dir)
    trained = trainer.train(cfg, sink, stop, resume_from=resume_from, output_dir=output_dir)
    if on_trained is not None:
        on_trained(trained)
    if trained.stopped_early or not cfg.data.evaluate_after_training or not main:
        return PipelineResult(trained, None, None)
    # The trainer polls `stop` only before each step: a request made during the last step is
    # seen here, and honoured by not starting a (possibly long) evaluation.
    if stop():
        return PipelineResult(trained, None, None, eval_stopped=True)

    from unisd_core.evaluation.cli import EvalStopped

    eval_dir = output_dir / EVAL_DIR
    # Training from scratch made a new model, even if it reuses an old run's checkpoint names:
    # items evaluated before describe another model. Only a resumed run (or the untrained base
    # model, which is always the same) may reuse them.
    fresh = resume_from is None and cfg.objective != "none"
    started = time.monotonic()
    try:
        report = evaluate_output(cfg, output_dir, eval_dir, stop, fresh=fresh)
    except EvalStopped:
        return PipelineResult(trained, None, None, eval_stopped=True)
    seconds = time.monotonic() - started
    # The report keeps every value; metric stores get finite numbers only (an overflowing
    # perplexity is `inf`, which JSON clients of the metric API cannot read).
    finite = {k: float(v) for k, v in report["flat"].items() if math.isfinite(v)}
    sink(trained.steps_completed, finite)
    return PipelineResult(trained, report, eval_dir, eval_seconds=seconds)


def evaluate_output(
    cfg: RunConfig,
    output_dir: Path,
    eval_dir: Path,
    stop: StopSignal = never_stop,
    *,
    fresh: bool = False,
) -> dict[str, Any]:
    """Evaluate what training left in `output_dir` with the run's evaluation settings.

    Items already in `eval_dir` from the same evaluation are reused unless `fresh`.
    """
    from unisd_core.evaluation.cli import EvalStateMismatch, run_eval

    def run(fresh: bool) -> dict[str, Any]:
        return run_eval(
            output_dir,
            [],  # the config's data.eval_benchmarks, else the training benchmark + its OOD pair
            eval_dir,
            None,
            None,  # the config's data.max_eval_examples
            cfg.data.eval_batch_size,
            max_new_tokens=cfg.data.eval_max_new_tokens,
            likelihoods=cfg.data.eval_gold_ppl,
            engine=cfg.data.eval_engine,
            seed=EVAL_SEED,
            device=None if cfg.resources.device == "auto" else cfg.resources.device,
            fresh=fresh,
            progress=False,
            stop=stop,
        )

    try:
        return run(fresh=fresh)  # otherwise resumes the items an interrupted evaluation finished
    except EvalStateMismatch:
        # eval/ holds results for another model: training went on after an earlier evaluation
        # (a longer max_steps, a resumed run). Those items describe an older checkpoint.
        return run(fresh=True)


def write_config(cfg: RunConfig, output_dir: Path) -> None:
    """Write `output_dir/config.yaml` unless it already holds this very config.

    The evaluation reads the run's settings (model, benchmarks, limits) from this file, so a file
    left by another config (the same directory reused) is replaced, not trusted.
    """
    path = output_dir / CONFIG_FILE
    if path.is_file():
        try:
            if RunConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))) == cfg:
                return
        except (OSError, ValueError, yaml.YAMLError):
            pass  # unreadable or invalid: overwritten below
    path.write_text(cfg.to_yaml(), encoding="utf-8")


__all__ = ["EVAL_DIR", "EVAL_SEED", "PipelineResult", "evaluate_output", "train_and_evaluate"]
