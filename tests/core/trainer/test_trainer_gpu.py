"""On a CUDA GPU: every component in bf16 runs, the LoRA teachers add no base copy, and vLLM
rollouts serve the student's current weights."""

from __future__ import annotations

import math

import pytest
import torch

from tests.core.trainer.trainer_helpers import fast_config
from unisd_core import train
from unisd_core.callbacks import ListSink
from unisd_core.generation import encode_chat, generate
from unisd_core.networks import build_networks
from unisd_core.rollouts import build_rollouts
from unisd_core.vllm_engine import vllm_installed

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


@pytest.mark.skipif(not vllm_installed(), reason="needs the vllm package")
def test_vllm_rollouts_serve_the_student_as_it_trains() -> None:
    """The engine gets the student's (merged LoRA) weights, and new ones after a step."""
    cfg = fast_config(
        "gkd",
        model={"name_or_path": "builtin:smollm2-135m-instruct", "dtype": "float32"},
        resources={"device": "cuda"},
        train={"rollout_engine": "vllm", "max_new_tokens": 12},
    )
    nets = build_networks(cfg, torch.device("cuda"))
    tok = nets.tokenizer
    prompts = [
        encode_chat(tok, [{"role": "user", "content": text}])
        for text in ("What is 2 + 3?", "Name a colour.", "Say hello.")
    ]
    rollouts = build_rollouts(cfg, nets.student, tok)
    assert rollouts.name == "vllm"
    try:
        outputs = []
        for version in (0, 1):
            with torch.no_grad():  # stands for an optimizer step on the adapter
                for name, param in nets.student.named_parameters():
                    if "lora_B.default" in name:
                        param.add_(0.05 * torch.randn_like(param))
            served = rollouts.sample(
                prompts, version=version, max_new_tokens=12, temperature=0.0, top_p=1.0, seed=0
            )
            hf = generate(nets.student, tok, prompts, max_new_tokens=12)
            # Kernels differ, so only the first tokens must agree exactly (fp32, greedy).
            assert [g.completion_ids[:4] for g in served] == [g.completion_ids[:4] for g in hf]
            outputs.append([g.completion_ids for g in served])
        assert outputs[0] != outputs[1]  # the second version's weights were really served
    finally:
        rollouts.close()


@pytest.mark.skipif(not vllm_installed(), reason="needs the vllm package")
def test_a_run_samples_its_rollouts_with_vllm() -> None:
    cfg = fast_config(
        "unisd_star",
        model={"name_or_path": "builtin:smollm2-135m-instruct", "dtype": "bfloat16"},
        resources={"device": "cuda"},
        train={"rollout_engine": "vllm", "on_policy_fraction": 1.0},
    )
    sink = ListSink()
    result = train(cfg, sink)
    assert result.info["rollout_engine"] == "vllm"
    assert all(math.isfinite(v) for _, v in sink.points["loss/total"])
    assert all(v > 0 for _, v in sink.points["train/completion_length"])
