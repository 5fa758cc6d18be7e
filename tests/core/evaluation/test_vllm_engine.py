"""The vLLM evaluation engine: choice, export of the evaluated model, output conversion.

vLLM itself needs a CUDA GPU; the test that runs it is marked `gpu` (bench/gpu.sh runs those).
Everything around it is checked here on the CPU.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from unisd_core.cli import app
from unisd_core.generation import eos_token_ids, generate
from unisd_core.vllm_engine import (
    EngineUnavailable,
    choose_engine,
    export_for_serving,
    output_as_generation,
    vllm_generator,
    vllm_installed,
)

from .tiny_lm import tiny_model, tiny_tokenizer

PROMPTS = [[5, 9, 14, 3], [7, 7, 20], [30, 31, 32, 33, 34]]


def test_auto_and_hf_use_hf_generate_on_the_cpu() -> None:
    assert choose_engine("auto", "cpu") == "hf"
    assert choose_engine("hf", "cuda") == "hf"


def test_vllm_on_the_cpu_is_refused_with_the_reason() -> None:
    with pytest.raises(EngineUnavailable, match="vllm"):
        choose_engine("vllm", "cpu")


def test_eval_cli_names_the_engine_problem_and_exits_cleanly(tmp_path: Path) -> None:
    args = ["eval", "--model", "builtin:tiny-random", "--benchmarks", "gsm8k", "--limit", "1"]
    result = CliRunner().invoke(app, [*args, "--engine", "vllm", "--output", str(tmp_path)])
    assert result.exit_code == 2
    assert "engine 'vllm' needs" in result.output
    wrong = CliRunner().invoke(app, [*args, "--engine", "fast", "--output", str(tmp_path)])
    assert wrong.exit_code == 2
    assert "--engine must be one of" in wrong.output


def _lora_model() -> torch.nn.Module:
    model = get_peft_model(
        tiny_model(seed=3),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    return model


def test_exported_lora_model_generates_what_the_adapted_model_generates(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    adapted = _lora_model()
    expected = generate(adapted, tok, PROMPTS, max_new_tokens=6)

    folder = export_for_serving(adapted, tok, tmp_path / "served")

    served = AutoModelForCausalLM.from_pretrained(str(folder))
    assert not any("lora" in name for name, _ in served.named_parameters())
    got = generate(served, tok, PROMPTS, max_new_tokens=6)
    assert [g.completion_ids for g in got] == [g.completion_ids for g in expected]
    # The model in memory keeps its adapters (retention metrics switch them off later).
    assert any("lora_A" in name for name, _ in adapted.named_parameters())
    with adapted.disable_adapter():
        base = generate(adapted, tok, PROMPTS, max_new_tokens=6)
    assert [g.completion_ids for g in base] != [g.completion_ids for g in expected]


def test_vllm_outputs_follow_the_hf_conventions() -> None:
    eos = [1]
    stopped = SimpleNamespace(token_ids=(4, 5), text="w1 w2", finish_reason="stop", stop_reason=1)
    cut = SimpleNamespace(token_ids=(4, 5, 6), text="w1 w2 w3", finish_reason="length")
    kept = SimpleNamespace(token_ids=(4, 1), text="w1", finish_reason="stop", stop_reason=None)
    assert output_as_generation([9], stopped, eos).completion_ids == [4, 5, 1]
    assert output_as_generation([9], stopped, eos).finished
    assert output_as_generation([9], cut, eos).completion_ids == [4, 5, 6]
    assert not output_as_generation([9], cut, eos).finished
    assert output_as_generation([9], kept, eos).completion_ids == [4, 1]


@pytest.mark.gpu
@pytest.mark.skipif(
    not (torch.cuda.is_available() and vllm_installed()), reason="needs CUDA and vllm"
)
def test_vllm_greedy_matches_hf_greedy_on_smollm2(tmp_path: Path) -> None:
    from unisd_core.config import ModelConfig
    from unisd_core.modeling import load

    loaded = load(ModelConfig(name_or_path="builtin:smollm2-135m-instruct"))
    model, tok = loaded.model.to("cuda"), loaded.tokenizer
    prompts = [tok(text)["input_ids"] for text in ("The capital of France is", "def add(a, b):")]
    hf = generate(model, tok, prompts, max_new_tokens=12)
    engine = vllm_generator(model, tok, tmp_path)
    served = engine(prompts, max_new_tokens=12)
    assert eos_token_ids(model, tok) == engine.eos_ids
    # Kernels differ, so only the first tokens must agree exactly (fp32 weights, greedy).
    assert [g.completion_ids[:4] for g in served] == [g.completion_ids[:4] for g in hf]
