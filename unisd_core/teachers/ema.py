"""The EMA teacher: theta_T <- beta * theta_T + (1 - beta) * theta_S (method.md 3.2 and 0.2).

Both sides are given as modules or as name -> tensor mappings, matched by name. Under LoRA the
trainer passes the two adapters' tensors keyed by the same names, so the teacher adapter really
follows the student's; a call where nothing matches is an error, because a silent no-op is
exactly the reference code's bug.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

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


# --- the EMA adapter as merged weights --------------------------------------------------------


def _adapter_layers(model: nn.Module, adapter: str) -> list[Any]:
    """The LoRA layers that carry `adapter`."""
    return [m for m in model.modules() if adapter in getattr(m, "lora_A", {})]


#: Weight dtypes whose merged weights keep the adapter: in bfloat16 (8 mantissa bits) a small
#: update added to a weight rounds away, so half-precision models keep peft's own path.
FOLDABLE_DTYPES = (torch.float32, torch.float64)


def can_fold(model: nn.Module, adapter: str) -> bool:
    """Whether every layer of `adapter` is plain LoRA on a full-precision `nn.Linear` (no DoRA
    or other variant), whose `base + adapter` output is exactly a linear map with merged
    weights."""
    layers = _adapter_layers(model, adapter)
    return bool(layers) and all(
        isinstance(getattr(m, "base_layer", None), nn.Linear)
        and m.base_layer.weight.dtype in FOLDABLE_DTYPES
        and hasattr(m, "get_delta_weight")
        and adapter not in getattr(m, "lora_variant", {})
        for m in layers
    )


@contextmanager
def folded_adapter(model: Any, adapter: str) -> Iterator[None]:
    """Inside the block `model` (a peft model) computes base + `adapter` as one matmul per layer.

    Adapters are disabled (every LoRA layer runs its base layer only), and each base layer
    computes, while it runs, with `W + delta(adapter)`, built just before and dropped just after,
    so only one layer's merged weight exists at a time and `W` itself is never written: its
    tensor is swapped out and back, not modified, so the base weights stay bit-identical. This
    is the same function as peft's `adapter_names` path (`W x + s B A x`, dropout being off in
    eval mode) without its per-layer copies of the batch, and one matmul instead of three.
    Only for no-grad forwards; check `can_fold` first.
    """
    originals: dict[nn.Linear, Tensor] = {}

    def restore(base: nn.Linear) -> None:
        if base in originals:
            base.weight.data = originals.pop(base)

    def hooks_for(layer: Any) -> tuple[Any, Any]:
        def fold(base: nn.Linear, args: Any) -> None:
            weight = base.weight.data
            delta = layer.get_delta_weight(adapter)
            originals[base] = weight
            base.weight.data = (weight + delta).to(weight.dtype)

        def unfold(base: nn.Linear, args: Any, output: Any) -> None:
            restore(base)

        return fold, unfold

    handles = []
    try:
        with model.disable_adapter():
            for layer in _adapter_layers(model, adapter):
                fold, unfold = hooks_for(layer)
                handles.append(layer.base_layer.register_forward_pre_hook(fold))
                handles.append(layer.base_layer.register_forward_hook(unfold))
            yield
    finally:
        for handle in handles:
            handle.remove()
        for base in list(originals):  # a forward that raised half-way
            restore(base)
