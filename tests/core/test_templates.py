"""The paper-table template: which runs it plans and at what scale."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from unisd_core.config import RunConfig
from unisd_core.templates import (
    BUDGETS,
    PAPER_METHODS,
    PaperTableOptions,
    paper_device_batch,
    paper_table,
)


def test_full_template_covers_every_method_benchmark_and_seed() -> None:
    runs = paper_table(PaperTableOptions(model="builtin:tiny-random", seeds=2))
    trained = [r for r in runs if r.method != "base"]
    assert len(trained) == (len(PAPER_METHODS) - 1) * 4 * 2
    # the untrained base is evaluated once per benchmark, not once per seed
    assert sorted((r.benchmark, r.seed) for r in runs if r.method == "base") == [
        ("cose", 0),
        ("mbpp", 0),
        ("scienceqa", 0),
        ("toolalpaca", 0),
    ]
    for run in runs:
        config = RunConfig.model_validate(run.config)  # every cell is a valid config
        assert config.preset == run.method and config.data.benchmark == run.benchmark
        assert config.train.seed == run.seed
    evals = {r.benchmark: r.eval_benchmarks for r in runs}
    assert evals == {
        "scienceqa": ["scienceqa", "gpqa"],
        "mbpp": ["mbpp", "humaneval"],
        "cose": ["cose"],
        "toolalpaca": ["toolalpaca"],
    }


def test_budgets_keep_method_hyperparameters_and_set_the_scale() -> None:
    small = PaperTableOptions(model="builtin:tiny-random", seeds=1, budget="small")
    runs = paper_table(small)
    cells = {(r.method, r.benchmark): RunConfig.model_validate(r.config) for r in runs}
    sft, star = cells[("sft", "mbpp")], cells[("unisd_star", "mbpp")]
    budget = BUDGETS["small"]
    assert sft.train.max_steps == budget.max_steps and sft.train.lr == budget.lr
    assert sft.data.max_eval_examples == budget.max_eval_examples
    assert star.train.batch_size == max(1, sft.train.batch_size // 2)  # UniSD* halves the batch
    assert star.ema.ref_model_mixup_beta == 0.98 and star.agreement.granularity == "token"
    ssd = cells[("ssd", "mbpp")]
    assert ssd.train.temperature == 1.0 and ssd.train.top_p == 0.95  # the preset's sampling

    paper = PaperTableOptions(model="Qwen/Qwen2.5-7B-Instruct", seeds=1, budget="paper")
    configs = {r.method: RunConfig.model_validate(r.config) for r in paper_table(paper)}
    assert configs["sft"].train.epochs == 1 and configs["sft"].train.max_steps is None
    assert configs["sft"].train.batch_size == 4 * 4 and configs["sft"].train.grad_accum == 4
    assert configs["unisd_star"].train.batch_size == 2 * 4
    assert configs["sft"].train.lr == 2e-5 and configs["sft"].data.max_prompt_length == 3072


@pytest.mark.parametrize(
    ("model", "batch"),
    [
        ("Qwen/Qwen2.5-0.5B-Instruct", 16),
        ("builtin:smollm2-135m-instruct", 16),
        ("Qwen/Qwen2.5-1.5B-Instruct", 8),
        ("google/gemma-3-4b-it", 8),
        ("meta-llama/Llama-3.1-8B-Instruct", 4),
        ("my-model", 8),
    ],
)
def test_paper_batch_follows_the_launcher_table(model: str, batch: int) -> None:
    assert paper_device_batch(model) == batch


def test_overrides_and_subsets() -> None:
    options = PaperTableOptions(
        model="builtin:tiny-random",
        seeds=[7, 9],
        methods=["sft", "ema"],
        benchmarks=["cose"],
        max_steps=2,
        max_eval_examples=3,
    )
    runs = paper_table(options)
    assert [(r.method, r.seed) for r in runs] == [("sft", 7), ("sft", 9), ("ema", 7), ("ema", 9)]
    assert all(r.config["train"]["max_steps"] == 2 for r in runs)
    assert all(r.config["data"]["max_eval_examples"] == 3 for r in runs)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("methods", ["sft", "warp"], "unknown method"),
        ("methods", ["sft", "sft"], "distinct"),
        ("benchmarks", ["gsm8k"], "benchmarks"),
        ("seeds", 0, "1 to 50"),
        ("seeds", [1, 1], "distinct"),
        ("budget", "huge", "budget"),
        ("max_steps", 0, "max_steps"),
    ],
)
def test_bad_options_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PaperTableOptions.model_validate({field: value})
    assert caught.value.errors()[0]["loc"][0] == field
    assert message in str(caught.value)
