"""Built-in ablation templates: named grids of runs, planned as plain config mappings.

`paper-table` lays out the paper's main table: every method row (a preset) x every training
benchmark x seeds, each run evaluated on its benchmark and, for ScienceQA and MBPP, on the
out-of-distribution partner (GPQA, HumanEval). A *budget* sets the scale: `paper` follows the
paper's launcher (method.md section 2: one epoch, LoRA, batch by model size, halved for UniSD*,
3072/1024 token limits); `small` fits a 2-core CPU with a 135M model in minutes per run.

Torch-free (the API plans sweeps with it); configs come back as mappings so that the caller
validates them and reports errors in its own terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from unisd_core.presets import PRESETS

PAPER_TABLE = "paper-table"
TEMPLATES = (PAPER_TABLE,)

#: The paper's rows, in its order: every preset (the presets are defined in that order).
PAPER_METHODS = tuple(PRESETS)
TrainBenchmark = Literal["scienceqa", "mbpp", "cose", "toolalpaca"]
PAPER_TRAIN_BENCHMARKS: tuple[TrainBenchmark, ...] = ("scienceqa", "mbpp", "cose", "toolalpaca")
#: Out-of-distribution evaluations of a training benchmark (the paper's GPQA and HumanEval columns).
OOD_EVALUATIONS = {"scienceqa": "gpqa", "mbpp": "humaneval"}
#: The reference row: the model without training.
UNTRAINED = "base"
#: Evaluation seed shared by every run: all methods and training seeds see the same items in the
#: same option order, so differences between runs are paired item by item.
EVAL_SEED = 42

BudgetName = Literal["small", "paper"]


class Budget(BaseModel):
    """The scale of every run of a template (the method hyper-parameters stay the presets')."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int | None = Field(
        None, ge=1, le=1_000_000, description="Optimizer steps per run (empty: one epoch)."
    )
    batch_size: int | None = Field(
        None, ge=1, le=4096, description="Prompts per step (empty: by model size, as the paper)."
    )
    grad_accum: int = Field(1, ge=1, le=1024, description="Micro-batches per step.")
    lr: float | None = Field(
        None, gt=0, le=1.0, description="Peak learning rate (empty: the presets' 2e-5)."
    )
    max_train_examples: int | None = Field(
        None, ge=1, description="Training examples used (empty: all)."
    )
    max_eval_examples: int | None = Field(
        None, ge=1, description="Evaluation items per benchmark (empty: the whole split)."
    )
    max_prompt_length: int = Field(3072, ge=8, le=131072, description="Prompt token limit.")
    max_completion_length: int = Field(
        1024, ge=1, le=131072, description="Completion token limit (training and scoring)."
    )
    rollout_tokens: int = Field(1024, ge=1, le=32768, description="Tokens per on-policy rollout.")
    eval_max_new_tokens: int = Field(1024, ge=1, le=32768, description="Evaluation generation.")
    eval_batch_size: int = Field(16, ge=1, le=1024, description="Evaluation batch size.")
    gold_ppl: bool = Field(True, description="Also score the gold answers' perplexity.")


BUDGETS: dict[str, Budget] = {
    # The paper's launcher: one epoch over the full training split, per-device batch by model
    # size with 4 accumulation steps, full evaluation splits, 3072/1024 token limits.
    "paper": Budget(grad_accum=4),
    # A CPU-sized pass (a 135M model on one core: ~30 s per step, ~8 s per evaluated item):
    # four steps of two prompts and a fixed 12-item evaluation subset per benchmark. Four steps
    # replace a whole epoch, so the learning rate is raised tenfold (fixed in advance, never
    # tuned on the evaluation items). Enough to exercise every method and measure drift; far
    # too little to rank methods, which the report's intervals make plain.
    "small": Budget(
        max_steps=4,
        batch_size=2,
        grad_accum=1,
        lr=2e-4,
        max_train_examples=8,
        max_eval_examples=12,
        max_prompt_length=768,
        max_completion_length=64,
        rollout_tokens=64,
        eval_max_new_tokens=96,
        eval_batch_size=8,
        gold_ppl=False,  # not used by the report; saves a forward pass per item
    ),
}

#: The launcher's per-device batch by model size (method.md section 2), smallest first.
_PAPER_DEVICE_BATCH = ((0.6, 16), (4.5, 8), (float("inf"), 4))
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([mb])\b", re.I)


def paper_device_batch(model: str) -> int:
    """Per-device batch the paper's launcher uses for a model, read from its name (8 unknown)."""
    match = _SIZE.search(model.replace("_", "-").replace("-", " "))
    if match is None:
        return 8
    billions = float(match.group(1)) / (1000 if match.group(2).lower() == "m" else 1)
    return next(batch for limit, batch in _PAPER_DEVICE_BATCH if billions <= limit)


class PaperTableOptions(BaseModel):
    """What a `paper-table` sweep runs: model, budget, seeds, and which rows and columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        "builtin:smollm2-135m-instruct",
        min_length=1,
        max_length=500,
        description="Model every run starts from (HF id, local path or builtin:...).",
    )
    budget: BudgetName = Field("small", description="small: fits a CPU; paper: the paper's scale.")
    seeds: int | list[int] = Field(3, description="A count (seeds 0..n-1) or a list of seeds.")
    methods: list[str] = Field(
        default_factory=lambda: list(PAPER_METHODS),
        min_length=1,
        description="Rows: presets to run (base is the reference every gain is measured from).",
    )
    benchmarks: list[TrainBenchmark] = Field(
        default_factory=lambda: list(PAPER_TRAIN_BENCHMARKS),
        min_length=1,
        description="Training benchmarks; ScienceQA and MBPP also evaluate on GPQA and HumanEval.",
    )
    source: str = Field(
        "bundled", description="Data source: bundled, local:<dir> (e.g. the full files) or hf."
    )
    max_steps: int | None = Field(None, ge=1, le=1_000_000, description="Override the budget.")
    max_train_examples: int | None = Field(None, ge=1, description="Override the budget.")
    max_eval_examples: int | None = Field(None, ge=1, description="Override the budget.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where runs execute.")

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in PRESETS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {list(PAPER_METHODS)}")
        if len(set(value)) < len(value):
            raise ValueError("methods must be distinct")
        return value

    @field_validator("benchmarks")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) < len(value):
            raise ValueError("benchmarks must be distinct")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: int | list[int]) -> int | list[int]:
        count = value if isinstance(value, int) else len(value)
        if not 1 <= count <= 50:
            raise ValueError("give 1 to 50 seeds")
        if isinstance(value, list) and len(set(value)) < len(value):
            raise ValueError("seeds must be distinct")
        return value

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def resolved_budget(self) -> Budget:
        overrides = {
            k: v
            for k in ("max_steps", "max_train_examples", "max_eval_examples")
            if (v := getattr(self, k)) is not None
        }
        return BUDGETS[self.budget].model_copy(update=overrides)


@dataclass(frozen=True)
class TemplateRun:
    """One cell of a template: a row (method), a column group (benchmark) and a seed."""

    method: str
    benchmark: str
    seed: int
    config: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method}/{self.benchmark}"

    @property
    def eval_benchmarks(self) -> list[str]:
        return self.config["data"]["eval_benchmarks"]


def _batch(budget: Budget, options: PaperTableOptions, method: str) -> int:
    if budget.batch_size is not None:
        batch = budget.batch_size
    else:
        batch = paper_device_batch(options.model) * budget.grad_accum
    if method == "unisd_star":  # the paper halves UniSD*'s batch (method.md 3.6)
        batch = max(budget.grad_accum, batch // 2)
    return batch


def run_config(
    options: PaperTableOptions, method: str, benchmark: str, seed: int
) -> dict[str, Any]:
    """The config mapping of one cell: the method's preset at the template's budget."""
    budget = options.resolved_budget()
    train: dict[str, Any] = {
        "seed": seed,
        "batch_size": _batch(budget, options, method),
        "grad_accum": budget.grad_accum,
        "max_new_tokens": budget.rollout_tokens,
    }
    if budget.lr is not None:
        train["lr"] = budget.lr
    if budget.max_steps is not None:
        train["max_steps"] = budget.max_steps
    else:
        train["epochs"] = 1
    evals = [benchmark] + ([OOD_EVALUATIONS[benchmark]] if benchmark in OOD_EVALUATIONS else [])
    data: dict[str, Any] = {
        "benchmark": benchmark,
        "source": options.source,
        "eval_benchmarks": evals,
        "max_train_examples": budget.max_train_examples,
        "max_eval_examples": budget.max_eval_examples,
        "max_prompt_length": budget.max_prompt_length,
        "max_completion_length": budget.max_completion_length,
        "eval_max_new_tokens": budget.eval_max_new_tokens,
        "eval_batch_size": budget.eval_batch_size,
        "eval_gold_ppl": budget.gold_ppl,
        "evaluate_after_training": True,
    }
    overrides = {
        "name": f"paper-table {method} {benchmark} s{seed}",
        "preset": method,
        "model": {"name_or_path": options.model},
        "data": data,
        "train": train,
        "resources": {"device": options.device},
    }
    # The preset's own train block (e.g. SSD's sampling) survives; the budget wins on scale.
    return overrides


def paper_table(options: PaperTableOptions) -> list[TemplateRun]:
    """Every run of the template, method-major, then benchmark, then seed.

    The untrained base model is evaluated once per benchmark (first seed): its greedy
    evaluation does not depend on the training seed, and the analysis pairs that one
    evaluation with every seed of the trained rows.
    """
    return [
        TemplateRun(method, benchmark, seed, run_config(options, method, benchmark, seed))
        for method in options.methods
        for benchmark in options.benchmarks
        for seed in (options.seed_list[:1] if method == UNTRAINED else options.seed_list)
    ]
