"""One copy of the base weights under LoRA (method.md 0.3), counted as parameter storage."""

from __future__ import annotations

import torch

from tests.core.trainer.trainer_helpers import fast_config
from unisd_core.networks import build_networks


def storage(nets: object) -> tuple[int, int]:
    """(elements in distinct parameter storages, elements of LoRA tensors among them)."""
    seen: dict[int, int] = {}
    lora = 0
    modules = [nets.student] + ([nets.frozen_teacher] if nets.frozen_teacher is not None else [])  # type: ignore[attr-defined]
    for module in modules:
        for name, param in module.named_parameters():
            ptr = param.untyped_storage().data_ptr()
            if ptr not in seen:
                seen[ptr] = param.numel()
                lora += param.numel() if "lora_" in name else 0
    return sum(seen.values()), lora


def test_lora_keeps_one_base_copy_with_static_and_ema_teachers() -> None:
    cpu = torch.device("cpu")
    full = build_networks(fast_config("gkd", model={"lora": {"enabled": False}}), cpu)
    base_numel, _ = storage(full)
    base_numel //= 2  # student + frozen teacher copy
    assert full.frozen_teacher is not None

    static = build_networks(fast_config("gkd"), cpu)
    total, lora = storage(static)
    assert static.frozen_teacher is None
    assert total == base_numel + lora

    ema = build_networks(fast_config("unisd_star"), cpu)
    total_ema, lora_ema = storage(ema)
    assert ema.frozen_teacher is None
    assert total_ema == base_numel + lora_ema
    assert lora_ema == 2 * lora  # the student adapter and the EMA teacher adapter
    trainable = {n for n, p in ema.student.named_parameters() if p.requires_grad}
    assert trainable
    assert all(".default." in n for n in trainable)


def test_ema_teacher_adapter_starts_equal_and_moves() -> None:
    nets = build_networks(fast_config("unisd_star"), torch.device("cpu"))
    assert nets.ema_drift() == 0.0
    with torch.no_grad():
        for p in nets.trainable_parameters():
            p.add_(0.1)
    assert nets.ema_drift() > 0.0
    before = nets.ema_drift()
    assert nets.ema_sync(0.5) > 0
    assert 0.0 < nets.ema_drift() < before


def test_upstream_compat_ema_under_lora_is_the_released_no_op() -> None:
    nets = build_networks(fast_config("unisd_star", upstream_compat=True), torch.device("cpu"))
    assert nets.ema_sync(0.5) == 0
    assert nets.ema_drift() == 0.0
