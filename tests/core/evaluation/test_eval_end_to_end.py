"""builtin:tiny-random through the whole evaluator on every bundled benchmark (tiny budgets)."""

from __future__ import annotations

import json

import pytest

from unisd_core.config import ModelConfig
from unisd_core.data import BENCHMARKS, EVAL_SPLITS, load_examples
from unisd_core.evaluation.evaluator import HEADLINE, REDACTED_PROMPT, ItemResult, evaluate
from unisd_core.modeling import LoadedModel, load


@pytest.fixture(scope="module")
def tiny() -> LoadedModel:
    return load(ModelConfig(name_or_path="builtin:tiny-random"))


def test_every_bundled_benchmark_evaluates(tiny: LoadedModel) -> None:
    examples = [ex for b in BENCHMARKS for ex in load_examples(b, split=EVAL_SPLITS[b], limit=2)]
    seen: list[str] = []
    report = evaluate(
        tiny.model,
        tiny.tokenizer,
        examples,
        batch_size=4,
        max_new_tokens=4,
        base_model=tiny.model,
        max_prompt_length=256,
        sandbox_timeout_s=5,
        on_items=lambda items: seen.extend(i.id for i in items),
    )
    assert sorted(seen) == sorted(ex.id for ex in examples)
    assert set(report.metrics) == set(BENCHMARKS)
    for benchmark, metrics in report.metrics.items():
        task = next(ex.task for ex in examples if ex.benchmark == benchmark)
        assert metrics["n"] == 2
        assert 0.0 <= metrics[HEADLINE[task]] <= 1.0
        assert metrics["gold_ppl"] > 1.0
        assert metrics["retention_ppl"] > 1.0
        assert metrics["retention_jsd"] == pytest.approx(0.0, abs=1e-6)  # base == model
    for item in report.items:
        assert item.prompt
        assert (item.prompt == REDACTED_PROMPT) == (item.benchmark == "gpqa")
        assert item.score in (0.0, 1.0) or item.task == "tooluse"
        json.loads(item.to_json())
    flat = report.flat()
    assert "eval/scienceqa/accuracy" in flat
    assert "eval/mbpp/pass@1" in flat
    assert "eval/toolalpaca/action_accuracy" in flat
    assert "retention/ppl" in flat


def test_resume_reuses_finished_items(tiny: LoadedModel) -> None:
    examples = load_examples("gsm8k", split="test", limit=3)
    fake = ItemResult(
        id=examples[0].id,
        benchmark="gsm8k",
        task="math",
        prompt="p",
        output="Answer: 1",
        extracted="1",
        score=1.0,
        gold=examples[0].answer,
    )
    fresh: list[str] = []
    report = evaluate(
        tiny.model,
        tiny.tokenizer,
        examples,
        batch_size=2,
        max_new_tokens=2,
        likelihoods=False,
        done={fake.id: fake},
        on_items=lambda items: fresh.extend(i.id for i in items),
    )
    assert fresh == [ex.id for ex in examples[1:]]
    assert report.items[0] is fake
    assert [i.id for i in report.items] == [ex.id for ex in examples]
    assert report.items[1].gold_ppl is None  # likelihoods off
