"""From per-token losses to one scalar (method.md section 2).

Each sequence is first averaged over its own tokens, then sequences are averaged, so every
sequence counts equally whatever its length.
"""

from __future__ import annotations

from torch import Tensor


def reduce_per_sequence(
    per_token: Tensor, mask: Tensor, weights: Tensor | None = None, *, compat: bool = False
) -> Tensor:
    """Scalar loss from `per_token` `[B, T]`, `mask` `[B, T]` and optional `weights` `[B, T]`.

    Default (the paper's intended semantics, method.md 0.2):
    `L_i = sum_t m w l / max(sum_t m, 1)`, so a sequence weight really scales its sequence.

    `compat=True` (the reference code): `L_i = sum_t m w l / max(sum_t m w, 1)`; a weight
    that is constant over a sequence then cancels unless it is very small.

    Returns `mean_i L_i`. Dividing by the gradient-accumulation count is the caller's job.
    """
    m = mask.to(per_token.dtype)
    w = m if weights is None else m * weights.detach().to(per_token.dtype)
    numerator = (per_token * w).sum(-1)
    denominator = (w if compat else m).sum(-1).clamp(min=1.0)
    return (numerator / denominator).mean()
