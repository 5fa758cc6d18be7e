"""The EMA teacher: theta_T <- beta * theta_T + (1 - beta) * theta_S (method.md 3.2 and 0.2).

Both sides are given as modules or as name -> tensor mappings, matched by name. Under LoRA the
trainer passes the two adapters' tensors keyed by the same names, so the teacher adapter really
follows the student's; a call where nothing matches is an error, because a silent no-op is
exactly the reference code's bug.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

Params = nn.Module | Mapping[str, Tensor]


def _named(params: Params) -> dict[str, Tensor]:
    if isinstance(params, nn.Module):
        return dict(params.named_parameters())
    return dict(params)


def matched_pairs(teacher: Params, student: Params) -> list[tuple[Tensor, Tensor]]:
    """(teacher, student) tensor pairs with the same name and shape."""
    t_named, s_named = _named(teacher), _named(student)
    pairs = [
        (t_named[name], s_named[name])
        for name in t_named
        if name in s_named and t_named[name].shape == s_named[name].shape
    ]
    if not pairs:
        raise ValueError("EMA update: no parameter of the teacher matches the student by name")
    return pairs


@torch.no_grad()
def ema_update(teacher: Params, student: Params, *, beta: float) -> int:
    """Move every matching teacher tensor towards the student's, in place; returns the count."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    pairs = matched_pairs(teacher, student)
    for t, s in pairs:
        t.mul_(beta).add_(s.detach().to(t.dtype), alpha=1.0 - beta)
    return len(pairs)


@torch.no_grad()
def teacher_drift(teacher: Params, student: Params) -> float:
    """Relative L2 distance ||theta_T - theta_S|| / ||theta_S|| over matching tensors."""
    diff_sq = 0.0
    norm_sq = 0.0
    for t, s in matched_pairs(teacher, student):
        diff_sq += float(torch.sum((t.float() - s.float()) ** 2))
        norm_sq += float(torch.sum(s.float() ** 2))
    return (diff_sq**0.5) / max(norm_sq**0.5, 1e-12)
