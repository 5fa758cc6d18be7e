"""Rollout engines: the choice, the student's weights as served, and the per-step weight push.

vLLM needs a CUDA GPU: the test that runs it is in test_trainer_gpu.py (marked `gpu`). Here the
served weights are checked on the CPU by loading them into a plain transformers model, which is
what vLLM's `load_weights` does with them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from peft import LoraConfig, get_peft_model
from pydantic import ValidationError
from torch import Tensor
from transformers import AutoModelForCausalLM

from tests.core.evaluation.tiny_lm import tiny_model, tiny_tokenizer
from tests.core.trainer.trainer_helpers import fast_config
from unisd_core import train
from unisd_core.callbacks import ListSink
from unisd_core.generation import generate
from unisd_core.rollouts import VllmRollouts, WeightLoader, rollout_engine, serving_weights
from unisd_core.vllm_engine import EngineUnavailable

PROMPTS = [[5, 9, 14, 3], [7, 7, 20], [30, 31, 32, 33, 34]]
CPU = torch.device("cpu")


def _student_with_two_adapters() -> Any:
    """A peft student like the trainer's: adapter `default` trains, `ema` is the teacher's."""
    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False
    )
    model = get_peft_model(tiny_model(seed=3), lora)
    model.add_adapter("ema", lora)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".ema." in name:
                param.mul_(5.0)  # an EMA adapter far from the student's: serving it would show
    model.set_adapter("default")
    return model


def _greedy(model: Any) -> list[list[int]]:
    return [g.completion_ids for g in generate(model, tiny_tokenizer(), PROMPTS, max_new_tokens=8)]


def test_served_weights_are_the_student_merged_and_leave_it_untouched() -> None:
    student = _student_with_two_adapters()
    before = {n: p.detach().clone() for n, p in student.named_parameters()}

    served = dict(serving_weights(student))

    reference = copy.deepcopy(student)
    reference.delete_adapter("ema")
    expected = reference.merge_and_unload().state_dict()
    assert served.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(served[name], tensor, rtol=1e-6, atol=1e-6, msg=name)
    # Nothing of the model was written: base weights and both adapters are bit-identical.
    for name, param in student.named_parameters():
        assert torch.equal(param, before[name]), name


def test_a_plain_model_serves_its_own_state_dict() -> None:
    model = tiny_model(seed=1)
    served = dict(serving_weights(model))
    assert served.keys() == model.state_dict().keys()


class _LoadableModel(torch.nn.Module):
    """A transformers model with vLLM's `load_weights(weights=...)` entry point."""

    def __init__(self, template: Any) -> None:
        super().__init__()
        self.inner = AutoModelForCausalLM.from_config(template.config)

    def load_weights(self, weights: Iterable[tuple[str, Tensor]]) -> None:
        self.inner.load_state_dict(dict(weights), strict=True)


class _InProcessEngine:
    """Stands in for `vllm.LLM` (which needs CUDA): its worker is our `WeightLoader` over a
    transformers model, and it counts weight pushes and prefix-cache resets."""

    def __init__(self, template: Any) -> None:
        worker_cls = type("Worker", (WeightLoader,), {})
        self.worker = worker_cls()
        self.worker.model_runner = SimpleNamespace(model=_LoadableModel(template))
        self.pushes = 0
        self.prefix_resets = 0

    @property
    def served(self) -> Any:
        return self.worker.model_runner.model.inner

    def collective_rpc(self, method: str, args: tuple[Any, ...] = ()) -> list[Any]:
        self.pushes += 1
        return [getattr(self.worker, method)(*args)]

    def reset_prefix_cache(self) -> None:
        self.prefix_resets += 1


def test_weights_are_pushed_once_per_optimizer_step_and_serve_the_student() -> None:
    student = _student_with_two_adapters()
    engine = _InProcessEngine(student.get_base_model())
    rollouts = VllmRollouts.__new__(VllmRollouts)  # everything but the vLLM engine itself
    rollouts.student, rollouts.llm, rollouts.synced_version = student, engine, None

    rollouts.sync(0)
    assert engine.pushes == 1 and engine.prefix_resets == 1
    assert _greedy(engine.served) == _greedy(student)
    rollouts.sync(0)  # same version (another sampling in the step): nothing moves
    assert engine.pushes == 1

    with torch.no_grad():  # an optimizer step changes the student's adapter
        for name, param in student.named_parameters():
            if "lora_B.default" in name:
                param.add_(torch.randn_like(param))
    old_outputs = _greedy(engine.served)
    rollouts.sync(1)
    assert engine.pushes == 2 and engine.prefix_resets == 2
    assert _greedy(engine.served) == _greedy(student) != old_outputs


def test_auto_samples_with_hf_on_the_cpu_and_vllm_there_is_refused_by_field() -> None:
    assert rollout_engine(fast_config("gkd"), CPU) == "hf"
    with pytest.raises(EngineUnavailable, match=r"^train\.rollout_engine: engine 'vllm' needs"):
        rollout_engine(fast_config("gkd", train={"rollout_engine": "vllm"}), CPU)


def test_vllm_rollouts_with_several_gpus_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        fast_config(
            "gkd", train={"rollout_engine": "vllm"}, resources={"gpus": 2, "device": "cuda"}
        )
    assert caught.value.errors()[0]["loc"] == ("train", "rollout_engine")


def test_an_engine_that_cannot_run_fails_before_the_model_loads() -> None:
    cfg = fast_config(
        "gkd",
        model={"name_or_path": "/nonexistent/model"},
        train={"rollout_engine": "vllm"},
        resources={"device": "cpu"},
    )
    with pytest.raises(EngineUnavailable, match=r"train\.rollout_engine"):
        train(cfg, ListSink())


def test_a_run_records_its_rollout_engine() -> None:
    result = train(fast_config("gkd", train={"max_steps": 1}), ListSink())
    assert result.info["rollout_engine"] == "hf"
