"""Multi-teacher agreement weights (method.md section 3.1).

The same frozen teacher scores the sampled completion under K auxiliary contexts. Where the
contexts disagree on a token's log-probability the supervision is less reliable, so that token
(or, at sequence granularity, the whole sequence) gets a smaller weight in the distillation loss.

Shapes: `context_logps` is `[K, B, T]` (log-prob of the sampled token under context k), `mask` is
`[B, T]` (1 on completion tokens). Weights are `[B, T]` and carry no gradient.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Granularity = Literal["token", "sequence"]
Statistic = Literal["var", "range"]

#: Lower bound of the per-batch normaliser, so a batch where every context agrees gives weight 1.
MIN_SCALE = 1e-6
#: Sequence weights are clamped here rather than at `floor` (as in the reference code).
SEQUENCE_FLOOR = 1e-6


def disagreement(
    context_logps: Tensor, mask: Tensor, *, granularity: Granularity, stat: Statistic
) -> Tensor:
    """The disagreement statistic: `[B, T]` per token, or `[B]` per sequence.

    Token level uses the unbiased variance over K; sequence level first averages each context's
    log-probs over the sequence's tokens, then takes the population variance (as the reference
    code does). `range` is max minus min over K in both cases. Zero when K == 1.
    """
    if context_logps.dim() != 3:
        raise ValueError(f"context_logps must be [K, B, T], got shape {tuple(context_logps.shape)}")
    if context_logps.shape[1:] != mask.shape:
        raise ValueError(
            f"context_logps {tuple(context_logps.shape)} and mask {tuple(mask.shape)} disagree"
        )
    scores = context_logps.detach().float()
    if granularity == "sequence":
        m = mask.float()
        scores = (scores * m).sum(-1) / m.sum(-1).clamp(min=1.0)  # [K, B]
    if scores.shape[0] < 2:
        return torch.zeros_like(scores[0])
    if stat == "range":
        return scores.amax(0) - scores.amin(0)
    if stat == "var":
        return scores.var(0, unbiased=granularity == "token")
    raise ValueError(f"unknown agreement statistic {stat!r}")


def agreement_weights(
    context_logps: Tensor,
    mask: Tensor,
    *,
    gamma: float,
    granularity: Granularity,
    stat: Statistic,
    quantile: float = 0.95,
    cap: float = 10.0,
    floor: float = 0.01,
) -> Tensor:
    """Per-token weights `[B, T]` in (0, 1]; 1 at masked positions.

    token: `w_t = max(floor, 1 / (1 + gamma * min(d_t / s, cap)))`, `s` the `quantile` of the
    masked `d_t` in this batch (at least 1e-6).
    sequence: `w = max(exp(-gamma * D), 1e-6)`, broadcast over the sequence's tokens.
    """
    mask_bool = mask.bool()
    d = disagreement(context_logps, mask, granularity=granularity, stat=stat)
    if granularity == "sequence":
        weights = torch.exp(-gamma * d).clamp(min=SEQUENCE_FLOOR)  # [B]
        weights = weights[:, None].expand_as(mask_bool)
    elif granularity == "token":
        valid = d[mask_bool]
        if valid.numel() == 0:
            return torch.ones_like(d)
        scale = torch.quantile(valid, quantile).clamp(min=MIN_SCALE)
        weights = (1.0 / (1.0 + gamma * torch.clamp(d / scale, max=cap))).clamp(min=floor)
    else:
        raise ValueError(f"unknown agreement granularity {granularity!r}")
    return torch.where(mask_bool, weights, torch.ones_like(weights))
