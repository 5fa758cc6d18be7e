"""On-policy rollouts: the student's samples for each distillation step, from HF or vLLM.

`train.rollout_engine` picks the sampler. The HF path is `generation.generate` on the student
itself. The vLLM path keeps a vLLM engine in the training process, on the same GPU, and pushes
the student's current weights into it before each step's sampling (only when an optimizer step
changed them): LoRA adapters are merged into the served weights on the fly, so the engine serves
exactly the student's function while the model in training keeps its adapters. vLLM is an
optional dependency, imported only when chosen; it runs one engine per process, so it is offered
to single-GPU runs (a multi-GPU run samples with HF on each rank).
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unisd_core import generation
from unisd_core.config import RunConfig
from unisd_core.generation import Generation
from unisd_core.vllm_engine import EngineUnavailable, choose_engine, output_as_generation

#: The adapter the student trains (networks.py); the EMA teacher's adapter is never served.
STUDENT_ADAPTER = "default"


class Rollouts(Protocol):
    """Samples completions of token-id prompts from the student as it is at `version`."""

    name: Literal["hf", "vllm"]

    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        version: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
    ) -> list[Generation]: ...

    def close(self) -> None:
        """Release what the sampler holds beyond the student (vLLM: its GPU memory)."""


def rollout_engine(cfg: RunConfig, device: torch.device) -> Literal["hf", "vllm"]:
    """The engine `cfg` asks for on `device`; `auto` takes vLLM only where it can serve."""
    if cfg.resources.gpus > 1:  # the config refuses an explicit 'vllm' with several GPUs
        return "hf"
    try:
        return choose_engine(cfg.train.rollout_engine, device.type)
    except EngineUnavailable as exc:
        raise EngineUnavailable(f"train.rollout_engine: {exc}") from None


def build_rollouts(cfg: RunConfig, student: Any, tokenizer: PreTrainedTokenizerBase) -> Rollouts:
    device = next(student.parameters()).device
    if rollout_engine(cfg, device) == "vllm":
        return VllmRollouts(
            student,
            tokenizer,
            gpu_memory_utilization=cfg.train.rollout_gpu_memory,
            max_model_len=cfg.data.max_prompt_length + cfg.train.max_new_tokens,
            seed=cfg.train.seed,
        )
    return HfRollouts(student, tokenizer)


class HfRollouts:
    """`generation.generate` on the student: always current, nothing to synchronise."""

    name: Literal["hf", "vllm"] = "hf"

    def __init__(self, student: Any, tokenizer: PreTrainedTokenizerBase) -> None:
        self.student = student
        self.tokenizer = tokenizer

    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        version: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
    ) -> list[Generation]:
        return generation.generate(
            self.student,
            self.tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            batch_size=max(1, len(prompts)),
            seed=seed,
        )

    def close(self) -> None:
        pass


# --- the student's weights as a plain checkpoint's -------------------------------------------


def _lora_layers(model: nn.Module, adapter: str) -> dict[str, Any]:
    """Module name -> LoRA layer carrying `adapter`."""
    return {
        name: module
        for name, module in model.named_modules()
        if adapter in getattr(module, "lora_A", {})
    }


def serving_weights(model: Any, *, adapter: str = STUDENT_ADAPTER) -> Iterator[tuple[str, Tensor]]:
    """`(name, tensor)` of `model` as a plain transformers checkpoint would hold them.

    A peft model yields its base weights with `adapter` merged in (`W + delta`, computed into
    new tensors: the model's own weights are never written, so a bf16 base does not drift under
    repeated merge/unmerge) and without any adapter tensor; other adapters (the EMA teacher's)
    are left out. A plain model yields its state dict. Names are the base model's, as vLLM's
    `load_weights` reads them from a checkpoint.
    """
    if not hasattr(model, "get_base_model"):
        yield from model.state_dict().items()
        return
    base = model.get_base_model()
    layers = _lora_layers(base, adapter)
    for name, tensor in base.state_dict().items():
        if ".lora_" in name:
            continue
        owner, _, leaf = name.rpartition(".")
        if owner.endswith(".base_layer"):
            layer_name = owner.removesuffix(".base_layer")
            name = f"{layer_name}.{leaf}"
            layer = layers.get(layer_name)
            if layer is not None and leaf == "weight":
                with torch.no_grad():
                    merged = tensor.float() + layer.get_delta_weight(adapter).float()
                tensor = merged.to(tensor.dtype)
        yield name, tensor


# --- vLLM -------------------------------------------------------------------------------------


class WeightLoader:
    """Mixed into vLLM's GPU worker (`worker_extension_cls`): loads weights handed over in the
    same process. vLLM's models read `(name, tensor)` pairs named as in a HF checkpoint."""

    model_runner: Any

    def unisd_load_weights(self, weights: list[tuple[str, Tensor]]) -> int:
        runner = self.model_runner
        model = runner.get_model() if hasattr(runner, "get_model") else runner.model
        model.load_weights(weights=iter(weights))
        return len(weights)


def _write_model_config(student: Any, tokenizer: PreTrainedTokenizerBase, directory: Path) -> None:
    """The config and tokenizer vLLM builds the model from; weights come by `load_weights`."""
    plain: PreTrainedModel = (
        student.get_base_model() if hasattr(student, "get_base_model") else student
    )
    plain.config.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


class VllmRollouts:
    """A vLLM engine inside this process serving the student's current weights.

    The engine starts with placeholder weights (`load_format="dummy"`: no checkpoint is written)
    and receives the student's before its first sample. `version` is the trainer's count of
    optimizer steps: weights are pushed again only when it moved, so steps that sample more than
    once, or distil on gold data, pay nothing.
    """

    name: Literal["hf", "vllm"] = "vllm"

    def __init__(
        self,
        student: Any,
        tokenizer: PreTrainedTokenizerBase,
        *,
        gpu_memory_utilization: float,
        max_model_len: int,
        seed: int,
    ) -> None:
        # The engine core in this process (not a child): the weight hand-over then passes
        # tensors by reference instead of serialising a model's worth of them every step.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        from vllm import LLM  # optional dependency

        self.student = student
        self.eos_ids = generation.eos_token_ids(student, tokenizer)
        dtype = str(next(student.parameters()).dtype).removeprefix("torch.")
        with tempfile.TemporaryDirectory(prefix="unisd-rollout-model-") as folder:
            _write_model_config(student, tokenizer, Path(folder))
            self.llm = LLM(
                model=folder,
                load_format="dummy",
                dtype=dtype if dtype in ("bfloat16", "float16", "float32") else "auto",
                seed=seed,
                gpu_memory_utilization=gpu_memory_utilization,
                max_model_len=max_model_len,
                distributed_executor_backend="uni",
                worker_extension_cls=f"{__name__}.WeightLoader",
            )
        self.synced_version: int | None = None

    def sync(self, version: int) -> None:
        """Push the student's weights if an optimizer step changed them since the last push."""
        if version == self.synced_version:
            return
        with torch.no_grad():
            weights = [(n, t.detach()) for n, t in serving_weights(self.student)]
        self.llm.collective_rpc("unisd_load_weights", args=(weights,))
        # Cached prefixes hold keys and values computed with the old weights.
        self.llm.reset_prefix_cache()
        self.synced_version = version

    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        version: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
    ) -> list[Generation]:
        from vllm import SamplingParams

        self.sync(version)
        requests = [{"prompt_token_ids": [int(t) for t in p]} for p in prompts]
        # One seed per prompt, derived from the step's: repeatable for a given batch.
        params = [
            SamplingParams(
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_new_tokens,
                stop_token_ids=self.eos_ids,
                skip_special_tokens=True,
                seed=(seed + i) % (2**63),
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [
            output_as_generation(prompt, out.outputs[0], self.eos_ids)
            for prompt, out in zip(prompts, outputs, strict=True)
        ]

    def close(self) -> None:
        # vLLM's engine holds its KV cache until collected; the evaluation that follows a
        # training run may start an engine of its own on the same GPU.
        self.__dict__.pop("llm", None)  # twice is harmless
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


__all__ = [
    "HfRollouts",
    "Rollouts",
    "VllmRollouts",
    "WeightLoader",
    "build_rollouts",
    "rollout_engine",
    "serving_weights",
]
