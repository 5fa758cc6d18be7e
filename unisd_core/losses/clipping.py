"""Divergence clipping (method.md section 3.5).

Shapes: `per_token` and `mask` are `[B, T]`; the result is `[B, T]`. Clipped tokens keep the
cap's value and get zero gradient, so a few exploding tokens cannot dominate a step.
"""

from __future__ import annotations

import torch
from torch import Tensor


def clip_threshold(
    per_token: Tensor,
    mask: Tensor,
    *,
    max_value: float | None = None,
    quantile: float | None = None,
) -> Tensor:
    """The cap as a 0-d tensor: `max_value`, or the `quantile` of the masked values."""
    if (max_value is None) == (quantile is None):
        raise ValueError("give exactly one of max_value and quantile")
    if max_value is not None:
        return torch.tensor(float(max_value), dtype=per_token.dtype, device=per_token.device)
    assert quantile is not None
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    valid = per_token.detach()[mask.bool()]
    if valid.numel() == 0:
        return torch.tensor(float("inf"), dtype=per_token.dtype, device=per_token.device)
    return torch.quantile(valid.float(), quantile).to(per_token.dtype)


def clip_divergence(
    per_token: Tensor,
    mask: Tensor,
    *,
    max_value: float | None = None,
    quantile: float | None = None,
) -> Tensor:
    """`min(per_token, c)` with `c` from `clip_threshold`."""
    cap = clip_threshold(per_token, mask, max_value=max_value, quantile=quantile)
    # `where`, not `minimum`: a token equal to the cap keeps its full gradient.
    return torch.where(per_token > cap, cap.detach(), per_token)


def fraction_clipped(per_token: Tensor, clipped: Tensor, mask: Tensor) -> float:
    """Share of the masked tokens whose value the cap changed."""
    m = mask.bool()
    total = int(m.sum())
    if total == 0:
        return 0.0
    changed = (per_token.detach() > clipped.detach()) & m
    return float(changed.sum()) / total
