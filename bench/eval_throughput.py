"""Evaluation throughput: batched vs one-by-one generation, and sandbox executions per second.

    .venv/bin/python bench/eval_throughput.py [--model builtin:tiny-random] [--items 16]
        [--batch-size 8] [--max-new-tokens 32] [--sandbox-runs 32] [--workers 2]

Prints items/s of greedy generation at batch size B and at batch size 1 on the same model and
prompts (their ratio is the speed-up batching buys), and sandboxed HumanEval executions/s.
Numbers, not assertions: tests never check times.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from unisd_core.config import ModelConfig
from unisd_core.data import load_examples
from unisd_core.data.prompts import student_messages
from unisd_core.evaluation.code import build_program, check_many
from unisd_core.generation import encode_chat, generate
from unisd_core.modeling import load


def generation_rate(
    model_name: str, items: int, batch_size: int, max_new_tokens: int
) -> dict[str, float]:
    loaded = load(ModelConfig(name_or_path=model_name))
    examples = load_examples("scienceqa", split="test", limit=items)
    prompts = [
        encode_chat(loaded.tokenizer, student_messages(ex), max_length=512) for ex in examples
    ]
    # Warm-up so that one-off costs (allocations, kernel selection) do not favour either side.
    generate(loaded.model, loaded.tokenizer, prompts[:2], max_new_tokens=4, batch_size=2)
    rates = {}
    for size in (batch_size, 1):
        start = time.perf_counter()
        gens = generate(
            loaded.model, loaded.tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=size
        )
        seconds = time.perf_counter() - start
        rates[f"items_per_s_batch{size}"] = len(prompts) / seconds
        rates[f"new_tokens_per_s_batch{size}"] = sum(len(g.completion_ids) for g in gens) / seconds
    rates["batching_speedup"] = (
        rates[f"items_per_s_batch{batch_size}"] / rates["items_per_s_batch1"]
    )
    return rates


def sandbox_rate(runs: int, workers: int) -> dict[str, float]:
    examples = load_examples("humaneval", split="test", limit=runs)
    programs = [build_program(ex, ex.answer) for ex in examples]
    start = time.perf_counter()
    results = check_many(programs, workers=workers)
    seconds = time.perf_counter() - start
    return {
        "sandbox_runs": float(len(programs)),
        "sandbox_passed": float(sum(r.passed for r in results)),
        "sandbox_exec_per_s": len(programs) / seconds,
        "sandbox_workers": float(workers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model", default="builtin:tiny-random")
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--sandbox-runs", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = {"model": args.model, "torch_threads": torch.get_num_threads()}
    results.update(generation_rate(args.model, args.items, args.batch_size, args.max_new_tokens))
    results.update(sandbox_rate(args.sandbox_runs, args.workers))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
