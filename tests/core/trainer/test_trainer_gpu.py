"""On a CUDA GPU: every component in bf16 runs, and the LoRA teachers add no base copy."""

from __future__ import annotations

import math

import pytest
import torch

from tests.core.trainer.trainer_helpers import fast_config
from unisd_core import train
from unisd_core.callbacks import ListSink

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("preset", ["unisd_star", "clip", "sft"])
def test_presets_run_in_bf16_on_cuda(preset: str) -> None:
    cfg = fast_config(preset, model={"dtype": "bfloat16"}, resources={"device": "cuda"})
    sink = ListSink()
    result = train(cfg, sink)
    assert result.steps_completed == 3
    assert all(math.isfinite(v) for _, v in sink.points["loss/total"])
    assert all(v > 0 for _, v in sink.points["sys/peak_mem_gb"])
