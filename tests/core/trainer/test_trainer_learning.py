"""The update goes the right way: on-policy distillation on a few repeated prompts shrinks the
student-teacher divergence it optimises (a sign or masking bug would leave it flat or growing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from unisd_core.callbacks import ListSink
from unisd_core.config import RunConfig
from unisd_core.trainer import train


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_on_policy_distillation_reduces_its_divergence(tmp_path: Path, lora: bool) -> None:
    cfg = RunConfig.model_validate(
        {
            "preset": "opsd",
            "model": {"lora": {"enabled": lora, "r": 8, "alpha": 16}},
            # Four prompts, batch four: every step sees the same prompts (fresh rollouts).
            "data": {"max_train_examples": 4, "max_prompt_length": 128},
            "divergence": {"alpha": 0.0},
            "train": {
                "max_steps": 24,
                "batch_size": 4,
                "lr": 3e-3 if lora else 1e-3,
                "max_new_tokens": 12,
                "warmup_ratio": 0.0,
                "schedule": "constant",
            },
        }
    )
    sink = ListSink()
    train(cfg, sink, output_dir=tmp_path)
    values = [v for _, v in sink.points["loss/distill"]]
    assert len(values) == 24
    first, last = sum(values[:4]) / 4, sum(values[-4:]) / 4
    # Measured: LoRA 0.0011 -> 0.0001, full fine-tuning 0.0021 -> 0.0004 (tiny random model).
    assert last < 0.5 * first, values
