"""Evaluate a model on benchmark Examples: greedy batched generation, scoring, likelihoods.

Per item it keeps the prompt, the output, the extracted answer and the score (the per-item
artifact), plus the task's details (sandbox status, tool-call sub-scores) and, when asked, the
gold-completion perplexity and the retention metrics against a base model.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unisd_core.data.prompts import gold_completion, student_messages
from unisd_core.data.schema import Example
from unisd_core.evaluation import mcqa, numeric, tooluse
from unisd_core.evaluation.code import build_program, check_many, extract_code
from unisd_core.evaluation.retention import (
    BaseProvider,
    as_provider,
    gold_ppl,
    retention_metrics,
)
from unisd_core.generation import Generator, encode_chat, generate

# Benchmarks whose item text must not be written to artifacts or logs (GPQA's authors ask that
# items never appear as plain text); their per-item prompt is replaced by this note.
REDACTED_BENCHMARKS = frozenset({"gpqa"})
REDACTED_PROMPT = "<redacted: GPQA items are not written out; rebuild the prompt from the id>"

# The headline metric of each task type (what `eval/<benchmark>/score` reports).
HEADLINE = {"mcqa": "accuracy", "code": "pass@1", "tooluse": "full_accuracy", "math": "accuracy"}


@dataclass
class ItemResult:
    id: str
    benchmark: str
    task: str
    prompt: str
    output: str
    extracted: str | None
    score: float
    gold: str
    finished: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    gold_ppl: float | None = None
    retention_ppl: float | None = None
    retention_jsd: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemResult:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class EvalReport:
    metrics: dict[str, dict[str, float]]  # benchmark -> metric -> value
    items: list[ItemResult]

    def flat(self) -> dict[str, float]:
        """Namespaced keys (`eval/<benchmark>/<metric>`, `retention/ppl`) for metric sinks."""
        out = {f"eval/{b}/{m}": v for b, ms in self.metrics.items() for m, v in ms.items()}
        ppl = [i.retention_ppl for i in self.items if i.retention_ppl is not None]
        if ppl:
            out["retention/ppl"] = sum(ppl) / len(ppl)
        return out


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def summarise(items: Sequence[ItemResult]) -> dict[str, dict[str, float]]:
    """Per-benchmark metrics from per-item results."""
    groups: dict[str, list[ItemResult]] = defaultdict(list)
    for item in items:
        groups[item.benchmark].append(item)
    metrics: dict[str, dict[str, float]] = {}
    for benchmark, group in sorted(groups.items()):
        task = group[0].task
        scores = [i.score for i in group]
        values: dict[str, float | None] = {"n": float(len(group))}
        values[HEADLINE[task]] = sum(scores) / len(scores)
        if task == "mcqa" or task == "math":
            values["extraction_failure_rate"] = sum(i.extracted is None for i in group) / len(group)
        if task == "tooluse":
            values["action_accuracy"] = _mean(i.details.get("action") for i in group)
            values["argument_accuracy"] = _mean(i.details.get("argument") for i in group)
        values["score"] = values[HEADLINE[task]]
        values["finished_rate"] = sum(i.finished for i in group) / len(group)
        values["gold_ppl"] = _mean(i.gold_ppl for i in group)
        values["retention_ppl"] = _mean(i.retention_ppl for i in group)
        values["retention_jsd"] = _mean(i.retention_jsd for i in group)
        metrics[benchmark] = {k: float(v) for k, v in values.items() if v is not None}
    return metrics


def score_outputs(
    examples: Sequence[Example],
    outputs: Sequence[str],
    *,
    sandbox_timeout_s: float = 10.0,
    sandbox_workers: int = 2,
) -> list[tuple[str | None, float, dict[str, Any]]]:
    """(extracted answer, score, details) per item; code items run in the sandbox together."""
    results: list[tuple[str | None, float, dict[str, Any]] | None] = [None] * len(examples)
    code_items: list[int] = []
    codes: list[str] = []
    programs: list[str] = []
    for index, (ex, text) in enumerate(zip(examples, outputs, strict=True)):
        if ex.task == "mcqa":
            letter, value = mcqa.score(text, ex.answer, len(ex.options))
            results[index] = (letter, value, {})
        elif ex.task == "math":
            number, value = numeric.score(text, ex.answer)
            results[index] = (number, value, {})
        elif ex.task == "tooluse":
            calls, tool = tooluse.score(text, ex.answer)
            details: dict[str, Any] = {
                "action": tool.action,
                "argument": tool.argument,
                "full": tool.full,
            }
            results[index] = (json.dumps(calls, ensure_ascii=False), tool.full, details)
        else:
            code = extract_code(text)
            code_items.append(index)
            codes.append(code)
            programs.append(build_program(ex, code))
            results[index] = (code, 0.0, {})
    checked = check_many(programs, timeout_s=sandbox_timeout_s, workers=sandbox_workers)
    for index, code, outcome in zip(code_items, codes, checked, strict=True):
        sandbox = {
            "status": outcome.status,
            "detail": outcome.detail,
            "sandbox_output": outcome.output[-2000:],
        }
        results[index] = (code, float(outcome.passed), sandbox)
    return [r for r in results if r is not None]


def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    base_model: PreTrainedModel | BaseProvider | None = None,
    max_prompt_length: int | None = None,
    likelihoods: bool = True,
    sandbox_timeout_s: float = 10.0,
    sandbox_workers: int = 2,
    done: Mapping[str, ItemResult] | None = None,
    on_items: Callable[[list[ItemResult]], None] | None = None,
    progress: bool = False,
    generator: Generator | None = None,
    chunk_size: int | None = None,
) -> EvalReport:
    """Evaluate `model` greedily on `examples`.

    `base_model` (a model, or a provider such as `adapters_disabled(model)`) turns on PPL_ret and
    retention JSD; `likelihoods` adds the gold-completion perplexity. Items whose id is in `done`
    are reused, not recomputed (resuming); `on_items` receives each finished chunk (to append it
    to a JSONL file as the evaluation goes). `generator` replaces HF generation (the vLLM
    engine); `chunk_size` items are generated and saved together (default: `batch_size`).
    """
    done = dict(done or {})
    provider = as_provider(base_model)
    todo = [ex for ex in examples if ex.id not in done]
    bar: Any = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(examples), initial=len(examples) - len(todo), desc="eval", unit="item")
    new: dict[str, ItemResult] = {}
    try:
        step = chunk_size or batch_size
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            items = _evaluate_chunk(
                model,
                tokenizer,
                chunk,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                provider=provider,
                max_prompt_length=max_prompt_length,
                likelihoods=likelihoods,
                sandbox_timeout_s=sandbox_timeout_s,
                sandbox_workers=sandbox_workers,
                generator=generator,
            )
            for item in items:
                new[item.id] = item
            if on_items is not None:
                on_items(items)
            if bar is not None:
                bar.update(len(items))
    finally:
        if bar is not None:
            bar.close()
    ordered = [done.get(ex.id) or new[ex.id] for ex in examples]
    return EvalReport(metrics=summarise(ordered), items=ordered)


def _evaluate_chunk(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    chunk: Sequence[Example],
    *,
    batch_size: int,
    max_new_tokens: int,
    provider: BaseProvider | None,
    max_prompt_length: int | None,
    likelihoods: bool,
    sandbox_timeout_s: float,
    sandbox_workers: int,
    generator: Generator | None,
) -> list[ItemResult]:
    messages = [student_messages(ex) for ex in chunk]
    prompts = [encode_chat(tokenizer, m, max_length=max_prompt_length) for m in messages]
    if generator is not None:
        gens = generator(prompts, max_new_tokens=max_new_tokens)
    else:
        gens = generate(
            model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size
        )
    scored = score_outputs(
        chunk,
        [g.text for g in gens],
        sandbox_timeout_s=sandbox_timeout_s,
        sandbox_workers=sandbox_workers,
    )
    max_length = (max_prompt_length + max_new_tokens) if max_prompt_length else None
    outputs = [g.completion_ids for g in gens]
    gold_items: list[float | None] = [None] * len(chunk)
    ret_ppl: list[float | None] = [None] * len(chunk)
    ret_jsd: list[float | None] = [None] * len(chunk)
    if likelihoods:
        golds = [
            [int(t) for t in tokenizer(gold_completion(ex), add_special_tokens=False)["input_ids"]]
            for ex in chunk
        ]
        _, gold_items = gold_ppl(
            model, prompts, golds, batch_size=batch_size, max_length=max_length
        )
    if provider is not None:
        ret_ppl, ret_jsd = retention_metrics(
            model, provider, prompts, outputs, batch_size=batch_size, max_length=max_length
        )
    return [
        ItemResult(
            id=ex.id,
            benchmark=ex.benchmark,
            task=ex.task,
            prompt=REDACTED_PROMPT
            if ex.benchmark in REDACTED_BENCHMARKS
            else messages[i][-1]["content"],
            output=gens[i].text,
            extracted=scored[i][0],
            score=scored[i][1],
            gold=ex.answer,  # GPQA: a letter only
            finished=gens[i].finished,
            details=scored[i][2],
            gold_ppl=gold_items[i],
            retention_ppl=ret_ppl[i],
            retention_jsd=ret_jsd[i],
        )
        for i, ex in enumerate(chunk)
    ]
