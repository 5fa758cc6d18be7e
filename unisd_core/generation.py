"""Batched sampling from a causal LM: HF `generate` with KV cache, left-padded prompts.

Used twice: by the trainer for on-policy rollouts (sampled, T=0.7) and by the evaluator (greedy).
Prompts arrive as token id lists so that the caller owns the chat template and truncation; the
helper `encode_chat` does both the usual way. Evaluation can hand generation to another engine
that follows the `Generator` protocol (vLLM: `unisd_core.vllm_engine`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

Message = dict[str, str]


@dataclass(frozen=True)
class Generation:
    """One completion. `completion_ids` stop after the first EOS, which is kept when present."""

    prompt_ids: list[int]
    completion_ids: list[int]
    text: str
    finished: bool  # True when the completion ended with an EOS token (not cut by the budget)


class Generator(Protocol):
    """Greedy completion of token-id prompts by an engine other than HF generate (vLLM)."""

    def __call__(
        self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int
    ) -> list[Generation]: ...


def eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Every id that ends a turn: the tokenizer's EOS plus the generation config's (chat models
    often stop on an end-of-turn token that differs from the tokenizer's EOS)."""
    ids: list[int] = []
    candidates: list[Any] = [tokenizer.eos_token_id]
    gen_cfg = getattr(model, "generation_config", None)
    if gen_cfg is not None:
        candidates.append(gen_cfg.eos_token_id)
    for item in candidates:
        values = item if isinstance(item, list | tuple) else [item]
        for value in values:
            if value is not None and int(value) not in ids:
                ids.append(int(value))
    if not ids:
        raise ValueError("the tokenizer and the model define no EOS token; generation cannot stop")
    return ids


def pad_token_id(tokenizer: PreTrainedTokenizerBase, eos_ids: Sequence[int]) -> int:
    pad = tokenizer.pad_token_id
    return int(pad) if pad is not None else int(eos_ids[0])


def encode_chat(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[Message],
    *,
    max_length: int | None = None,
) -> list[int]:
    """Token ids of a chat prompt, ready for generation (assistant turn opened).

    Tokenizers without a chat template (tiny test tokenizers) get a plain 'role: content' layout.
    Over-long prompts lose tokens from the front: the task statement sits at the end of every
    prompt builder's layout, so the front (demonstrations, lectures) is the cheapest part to drop.
    """
    if getattr(tokenizer, "chat_template", None):
        encoded: Any = tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        if not isinstance(encoded, list):  # a BatchEncoding in some tokenizer versions
            encoded = encoded["input_ids"]
        ids = [int(t) for t in encoded]
    else:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        ids = [int(t) for t in tokenizer(text, add_special_tokens=False)["input_ids"]]
    if max_length is not None and len(ids) > max_length:
        ids = ids[len(ids) - max_length :]
    return ids


@contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's RNG for the block without disturbing the caller's RNG state."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _cut_at_eos(ids: Sequence[int], eos_ids: Sequence[int]) -> tuple[list[int], bool]:
    for pos, token in enumerate(ids):
        if token in eos_ids:
            return list(ids[: pos + 1]), True
    return list(ids), False


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int | None = None,
) -> list[Generation]:
    """Complete every prompt; results come back in the input order.

    temperature 0 means greedy decoding. Prompts are grouped by length before batching (less
    padding, so less wasted compute), then left-padded so that all sequences end at the same
    position and the KV cache is shared by one decoding loop. With a seed, sampling is repeatable
    for the same prompts and batch size.
    """
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be >= 1")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    if not prompts:
        return []

    eos_ids = eos_token_ids(model, tokenizer)
    pad_id = pad_token_id(tokenizer, eos_ids)
    device = next(model.parameters()).device
    sampling = temperature > 0
    gen_config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sampling,
        temperature=temperature if sampling else None,
        top_p=top_p if sampling else None,
        top_k=None,  # method.md 1: no top-k; a model's own default must not sneak in
        eos_token_id=eos_ids,
        pad_token_id=pad_id,
        use_cache=True,
    )

    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: dict[int, Generation] = {}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), _seeded(seed, device):
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                width = max(len(prompts[i]) for i in chunk)
                input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
                attention = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, index in enumerate(chunk):
                    ids = list(prompts[index])
                    input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                    attention[row, width - len(ids) :] = 1
                generate_fn: Any = model.generate
                output = generate_fn(
                    input_ids=input_ids.to(device),
                    attention_mask=attention.to(device),
                    generation_config=gen_config,
                )
                new_tokens = output[:, width:].tolist()
                for row, index in enumerate(chunk):
                    completion, finished = _cut_at_eos(new_tokens[row], eos_ids)
                    results[index] = Generation(
                        prompt_ids=[int(t) for t in prompts[index]],
                        completion_ids=completion,
                        text=str(tokenizer.decode(completion, skip_special_tokens=True)),
                        finished=finished,
                    )
    finally:
        if was_training:
            model.train()
    return [results[i] for i in range(len(prompts))]
