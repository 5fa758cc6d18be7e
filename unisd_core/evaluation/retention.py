"""Likelihood metrics under teacher forcing (method.md 5): PPL_ret, retention JSD, gold PPL.

- `PPL_ret`: the fine-tuned model's greedy outputs scored by the *base* model; per example
  exp(-mean token log-prob), then the mean over examples with a non-empty completion (a mean of
  perplexities, not exp of a mean). Lower = less drift from the base distribution.
- `retention_jsd`: per token symmetric JSD (1/2-1/2 mixture, nats) between the base and the
  fine-tuned next-token distributions along the fine-tuned output, averaged per example, then
  over examples.
- gold PPL: the same scorer with (model = fine-tuned, completion = gold demonstration).

The base model is given as a `BaseProvider`: a zero-argument callable returning a context manager
that yields the base network. Under LoRA it is the same model with adapters disabled
(`adapters_disabled(model)`), so no second copy is held; a separate model can be wrapped with
`fixed_model(base)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F
from transformers import PreTrainedModel

BaseProvider = Callable[[], AbstractContextManager[PreTrainedModel]]


def fixed_model(model: PreTrainedModel) -> BaseProvider:
    """A provider for a separate base model held in memory."""
    return lambda: nullcontext(model)


def adapters_disabled(model: Any) -> BaseProvider:
    """A provider for a PEFT model's base: the same network with its adapters switched off."""

    @contextmanager
    def provide() -> Iterator[PreTrainedModel]:
        with model.disable_adapter():
            yield model

    return provide


def as_provider(base: PreTrainedModel | BaseProvider | None) -> BaseProvider | None:
    if base is None:
        return None
    if isinstance(base, torch.nn.Module):
        return fixed_model(base)  # type: ignore[arg-type]
    return base


@dataclass(frozen=True)
class _Batch:
    input_ids: Tensor
    attention_mask: Tensor
    position_ids: Tensor
    targets: Tensor  # [n, T] completion tokens (right-padded)
    mask: Tensor  # [n, T] 1.0 on real completion tokens
    width: int  # T


def _pack(
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    pad_id: int,
    max_length: int | None,
) -> _Batch:
    """Left-pad prompts and right-pad completions so every completion starts at one column."""
    fitted = []
    for prompt, completion in zip(prompts, completions, strict=True):
        prompt = list(prompt)
        if max_length is not None and len(prompt) + len(completion) > max_length:
            # Over-long rows lose prompt tokens from the front (the completion is what is scored).
            keep = max(1, max_length - len(completion))
            prompt = prompt[-keep:]
        fitted.append((prompt, list(completion)))
    p_width = max(len(p) for p, _ in fitted)
    t_width = max(1, max(len(c) for _, c in fitted))
    rows = len(fitted)
    input_ids = torch.full((rows, p_width + t_width), pad_id, dtype=torch.long)
    attention = torch.zeros((rows, p_width + t_width), dtype=torch.long)
    targets = torch.full((rows, t_width), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, t_width), dtype=torch.float32)
    for row, (prompt, completion) in enumerate(fitted):
        input_ids[row, p_width - len(prompt) : p_width] = torch.tensor(prompt)
        attention[row, p_width - len(prompt) : p_width] = 1
        if completion:
            input_ids[row, p_width : p_width + len(completion)] = torch.tensor(completion)
            attention[row, p_width : p_width + len(completion)] = 1
            targets[row, : len(completion)] = torch.tensor(completion)
            mask[row, : len(completion)] = 1.0
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    return _Batch(input_ids, attention, positions, targets, mask, t_width)


@torch.no_grad()
def _completion_logprobs(model: PreTrainedModel, batch: _Batch) -> Tensor:
    """Log-softmax (fp32) over the vocabulary at each completion position: [n, T, V]."""
    device = next(model.parameters()).device
    forward: Any = model
    out = forward(
        input_ids=batch.input_ids.to(device),
        attention_mask=batch.attention_mask.to(device),
        position_ids=batch.position_ids.to(device),
        logits_to_keep=batch.width + 1,  # logits at t predict token t+1
        use_cache=False,
    )
    logits = out.logits[:, :-1, :].float()
    return F.log_softmax(logits, dim=-1).cpu()


def _pad_id(model: PreTrainedModel) -> int:
    pad = getattr(model.config, "pad_token_id", None)
    if pad is None:
        eos = getattr(model.config, "eos_token_id", 0)
        pad = eos[0] if isinstance(eos, list) else eos
    return int(pad or 0)


def _batches(n: int, batch_size: int) -> Iterator[range]:
    for start in range(0, n, batch_size):
        yield range(start, min(n, start + batch_size))


def token_logprobs(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    *,
    batch_size: int = 4,
    max_length: int | None = None,
) -> list[list[float]]:
    """Per completion, log p(token | prompt, earlier tokens) under `model` (temperature 1)."""
    was_training = model.training
    model.eval()
    out: list[list[float]] = []
    try:
        for rows in _batches(len(prompts), batch_size):
            batch = _pack(
                [prompts[i] for i in rows],
                [completions[i] for i in rows],
                _pad_id(model),
                max_length,
            )
            logps = _completion_logprobs(model, batch)
            picked = logps.gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1)
            for row, index in enumerate(rows):
                out.append(picked[row, : len(completions[index])].tolist())
    finally:
        if was_training:
            model.train()
    return out


def perplexity(logps: Sequence[float]) -> float | None:
    """exp(-mean log-prob) of one completion; None for an empty completion."""
    if not logps:
        return None
    return math.exp(-sum(logps) / len(logps))


def mean_perplexity(per_item: Sequence[float | None]) -> float | None:
    """The mean of per-example perplexities over non-empty completions (method.md 5)."""
    values = [v for v in per_item if v is not None]
    return sum(values) / len(values) if values else None


def perplexities(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    *,
    batch_size: int = 4,
    max_length: int | None = None,
) -> list[float | None]:
    logps = token_logprobs(
        model, prompts, completions, batch_size=batch_size, max_length=max_length
    )
    return [perplexity(lp) for lp in logps]


def retention_ppl(
    base: PreTrainedModel | BaseProvider,
    prompts: Sequence[Sequence[int]],
    outputs: Sequence[Sequence[int]],
    *,
    batch_size: int = 4,
    max_length: int | None = None,
) -> tuple[float | None, list[float | None]]:
    """PPL_ret of the fine-tuned `outputs` under the base model: (mean, per-example)."""
    provider = as_provider(base)
    assert provider is not None
    with provider() as base_model:
        per_item = perplexities(
            base_model, prompts, outputs, batch_size=batch_size, max_length=max_length
        )
    return mean_perplexity(per_item), per_item


def gold_ppl(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    gold: Sequence[Sequence[int]],
    *,
    batch_size: int = 4,
    max_length: int | None = None,
) -> tuple[float | None, list[float | None]]:
    """Perplexity of the gold demonstrations under `model` (the fine-tuned one): (mean, items)."""
    per_item = perplexities(model, prompts, gold, batch_size=batch_size, max_length=max_length)
    return mean_perplexity(per_item), per_item


def symmetric_jsd(logp: Tensor, logq: Tensor) -> Tensor:
    """JSD(p, q) with the 1/2-1/2 mixture, in nats, over the last dimension."""
    log_m = torch.logsumexp(torch.stack([logp, logq]), dim=0) - math.log(2.0)
    kl_pm = (logp.exp() * (logp - log_m)).sum(-1)
    kl_qm = (logq.exp() * (logq - log_m)).sum(-1)
    return 0.5 * (kl_pm + kl_qm)


def retention_metrics(
    model: PreTrainedModel,
    base: PreTrainedModel | BaseProvider,
    prompts: Sequence[Sequence[int]],
    outputs: Sequence[Sequence[int]],
    *,
    batch_size: int = 4,
    max_length: int | None = None,
) -> tuple[list[float | None], list[float | None]]:
    """Per item (PPL_ret, retention JSD) from one base pass: the base log-probs that the JSD
    compares with also score the outputs, so PPL_ret costs no forward pass of its own."""
    provider = as_provider(base)
    assert provider is not None
    ppl: list[float | None] = []
    jsd_items: list[float | None] = []
    was_training = model.training
    model.eval()
    try:
        for rows in _batches(len(prompts), batch_size):
            batch = _pack(
                [prompts[i] for i in rows], [outputs[i] for i in rows], _pad_id(model), max_length
            )
            ft = _completion_logprobs(model, batch)
            with provider() as base_model:
                base_model.eval()
                ref = _completion_logprobs(base_model, batch)
            picked = ref.gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1)
            jsd = symmetric_jsd(ref, ft) * batch.mask
            for row, index in enumerate(rows):
                n = len(outputs[index])
                ppl.append(perplexity(picked[row, :n].tolist()))
                jsd_items.append(float(jsd[row].sum() / n) if n else None)
    finally:
        if was_training:
            model.train()
    return ppl, jsd_items


def retention_jsd(
    model: PreTrainedModel,
    base: PreTrainedModel | BaseProvider,
    prompts: Sequence[Sequence[int]],
    outputs: Sequence[Sequence[int]],
    *,
    batch_size: int = 4,
    max_length: int | None = None,
) -> tuple[float | None, list[float | None]]:
    """Mean per-token JSD between base and fine-tuned along the fine-tuned outputs.

    Scores batch by batch with the fine-tuned model and then inside the base context: under
    LoRA both are the same network, so the two passes cannot share one forward.
    """
    _, per_item = retention_metrics(
        model, base, prompts, outputs, batch_size=batch_size, max_length=max_length
    )
    values = [v for v in per_item if v is not None]
    return (sum(values) / len(values) if values else None), per_item
