"""Greedy evaluation through vLLM, for large evaluation runs on a GPU.

vLLM is an optional extra (`pip install vllm` on a CUDA machine); the HF path in
`unisd_core.generation` is always available. (Training rollouts through vLLM live in
`unisd_core.rollouts`.) vLLM loads
weights from a folder, so the model being evaluated is first written out as a plain Hugging Face
checkpoint: LoRA adapters merged into a copy of the base (the model in memory keeps its adapters,
which the retention metrics need), full fine-tunes saved as they are. Prompts go in as token ids,
so the chat template and truncation stay the caller's, exactly as on the HF path.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unisd_core.config import EvalEngine
from unisd_core.generation import Generation, eos_token_ids


class EngineUnavailable(RuntimeError):
    """vLLM was asked for where it cannot run; the message says why."""


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_engine(requested: EvalEngine, device: str) -> Literal["hf", "vllm"]:
    """`auto` takes vLLM when it is installed and the evaluation runs on CUDA, else HF."""
    on_cuda = device.startswith("cuda")
    if requested == "hf":
        return "hf"
    if requested == "vllm":
        if not vllm_installed():
            raise EngineUnavailable("engine 'vllm' needs the vllm package (pip install vllm)")
        if not on_cuda:
            raise EngineUnavailable(f"engine 'vllm' needs a CUDA device, not {device!r}")
        return "vllm"
    return "vllm" if vllm_installed() and on_cuda else "hf"


def export_for_serving(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, directory: Path
) -> Path:
    """Write `model` as a plain HF checkpoint vLLM can load; LoRA is merged into a copy."""
    directory.mkdir(parents=True, exist_ok=True)
    plain: Any = model
    if hasattr(model, "merge_and_unload"):  # a peft model: merge a copy, keep the original
        plain = copy.deepcopy(plain).merge_and_unload()
    plain.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


class VllmGreedy:
    """A vLLM engine over an exported checkpoint that completes token-id prompts greedily."""

    def __init__(
        self,
        model_dir: Path,
        *,
        eos_ids: Sequence[int],
        dtype: str = "auto",
        seed: int = 0,
        gpu_memory_utilization: float = 0.45,
        max_model_len: int | None = None,
    ) -> None:
        from vllm import LLM  # optional dependency, imported only when chosen

        self.eos_ids = list(eos_ids)
        # Leave room on the GPU for the HF copy that scores likelihoods and retention.
        self.llm = LLM(
            model=str(model_dir),
            dtype=dtype,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
        )

    def __call__(
        self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int
    ) -> list[Generation]:
        from vllm import SamplingParams

        params = SamplingParams(
            temperature=0.0,
            max_tokens=max_new_tokens,
            stop_token_ids=self.eos_ids,
            skip_special_tokens=True,
        )
        requests = [{"prompt_token_ids": [int(t) for t in p]} for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [
            output_as_generation(prompt, out.outputs[0], self.eos_ids)
            for prompt, out in zip(prompts, outputs, strict=True)
        ]


def output_as_generation(prompt: Sequence[int], output: Any, eos_ids: Sequence[int]) -> Generation:
    """vLLM's completion in the HF path's shape: ids up to and including the first EOS."""
    ids = [int(t) for t in output.token_ids]
    finished = output.finish_reason == "stop"
    if finished and (not ids or ids[-1] not in eos_ids):
        # vLLM drops a stop token id from the output in some versions; keep the HF convention.
        ids.append(int(getattr(output, "stop_reason", None) or eos_ids[0]))
    return Generation(
        prompt_ids=[int(t) for t in prompt],
        completion_ids=ids,
        text=str(output.text),
        finished=finished,
    )


def vllm_generator(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    workdir: Path,
    *,
    seed: int = 0,
    max_model_len: int | None = None,
) -> VllmGreedy:
    """Export `model` under `workdir` and start a greedy vLLM engine on it."""
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    exported = export_for_serving(model, tokenizer, workdir / "vllm-model")
    return VllmGreedy(
        exported,
        eos_ids=eos_token_ids(model, tokenizer),
        dtype=dtype if dtype in ("bfloat16", "float16", "float32") else "auto",
        seed=seed,
        max_model_len=max_model_len,
    )


__all__ = [
    "EngineUnavailable",
    "VllmGreedy",
    "choose_engine",
    "export_for_serving",
    "output_as_generation",
    "vllm_generator",
    "vllm_installed",
]
