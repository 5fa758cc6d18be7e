"""The run configuration: one typed, frozen, validated object from the UI to the trainer.

Torch-free on purpose: the API, the UI and the analysis engine import it. Field descriptions are
user-facing text (the UI shows them as tooltips), so keep them short and precise.

Cross-field rules raise errors located at the offending field (e.g. `clipping.token_clip_quantile`),
so the API and the CLI can point at it. Components are independent switches (method.md 0.1); only
the on-policy distillation objective uses them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

BENCHMARKS = (
    "scienceqa",
    "gpqa",
    "mbpp",
    "humaneval",
    "cose",
    "toolalpaca",
    "gsm8k",
    "medmcqa",
)
EvalEngine = Literal["auto", "hf", "vllm"]
Benchmark = Literal[
    "scienceqa", "gpqa", "mbpp", "humaneval", "cose", "toolalpaca", "gsm8k", "medmcqa"
]
Objective = Literal["on_policy_distill", "sft", "ssd", "none"]

BUILTIN_MODELS = ("builtin:tiny-random", "builtin:smollm2-135m-instruct")
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
COMPONENTS = ("agreement", "ema", "contrastive", "feature_matching", "clipping")


def field_error(loc: tuple[str, ...], message: str, value: Any) -> ValidationError:
    """A validation error located at `loc` (relative to the model raising it)."""
    return ValidationError.from_exception_data(
        "RunConfig",
        [InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value)],
    )


class ConfigBlock(BaseModel):
    """Base of every config block: immutable, and unknown keys are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- model ------------------------------------------------------------------------------------


class LoraConfig(ConfigBlock):
    enabled: bool = Field(
        False, description="Train LoRA adapters instead of all weights (one base copy in memory)."
    )
    r: int = Field(64, ge=1, le=4096, description="LoRA rank.")
    alpha: int = Field(128, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: tuple[str, ...] = Field(
        DEFAULT_LORA_TARGETS,
        min_length=1,
        description="Names of the linear layers that get adapters.",
    )


class ModelConfig(ConfigBlock):
    name_or_path: str = Field(
        "builtin:tiny-random",
        min_length=1,
        description=(
            "Base model: a Hugging Face id, a local directory, or a built-in model "
            "(builtin:tiny-random for tests, builtin:smollm2-135m-instruct for demos)."
        ),
    )
    revision: str | None = Field(
        None, description="Hub revision (branch, tag or commit) of the model; default: main."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Weight dtype: auto = bfloat16 on a GPU that supports it, float32 on CPU.",
    )
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA adapters.")

    @field_validator("name_or_path")
    @classmethod
    def _known_builtin(cls, value: str) -> str:
        if value.startswith("builtin:") and value not in BUILTIN_MODELS:
            raise ValueError(f"unknown built-in model {value!r}; choose one of {BUILTIN_MODELS}")
        return value


# --- data -------------------------------------------------------------------------------------


class DataConfig(ConfigBlock):
    benchmark: Benchmark = Field("scienceqa", description="Training benchmark.")
    source: str = Field(
        "bundled",
        description=(
            "Where the data comes from: 'bundled' (small samples shipped with UniSD Studio), "
            "'local:<dir>' (the original files in a folder) or 'hf' (Hugging Face datasets)."
        ),
    )
    train_split: str = Field("train", min_length=1, description="Split used for training.")
    eval_benchmarks: tuple[Benchmark, ...] = Field(
        (), description="Benchmarks evaluated after training (empty: the training benchmark)."
    )
    max_train_examples: int | None = Field(
        None, ge=1, description="Use only the first N training examples (all when empty)."
    )
    max_eval_examples: int | None = Field(
        None, ge=1, description="Evaluate on at most N items per benchmark (all when empty)."
    )
    max_prompt_length: int = Field(
        1024, ge=8, le=131072, description="Prompt token limit; longer prompts lose their front."
    )
    max_completion_length: int = Field(
        256,
        ge=1,
        le=131072,
        description="Token limit of scored completions (gold demonstrations are cut here).",
    )
    evaluate_after_training: bool = Field(
        True,
        description=(
            "Evaluate the final model on the eval benchmarks when training ends "
            "(the base preset only evaluates)."
        ),
    )
    eval_batch_size: int = Field(
        8, ge=1, le=1024, description="Prompts generated together during evaluation."
    )
    eval_max_new_tokens: int | None = Field(
        None,
        ge=1,
        le=131072,
        description="Generation budget per evaluated item (default: max_completion_length).",
    )
    eval_engine: EvalEngine = Field(
        "auto",
        description=(
            "Generation engine of the evaluation: 'hf' (transformers generate), 'vllm' (needs "
            "the vllm package and a CUDA device) or 'auto' (vLLM when both are there)."
        ),
    )
    eval_gold_ppl: bool = Field(
        True,
        description=(
            "Also score the gold demonstrations' perplexity under the trained model (one more "
            "forward pass per evaluated item)."
        ),
    )

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value in ("bundled", "hf"):
            return value
        if value.startswith("local:") and len(value) > len("local:"):
            return value
        raise ValueError("must be 'bundled', 'hf' or 'local:<dir>'")


# --- optimisation ------------------------------------------------------------------------------


class TrainConfig(ConfigBlock):
    max_steps: int | None = Field(
        10, ge=1, le=10_000_000, description="Optimizer steps to run (or set epochs instead)."
    )
    epochs: float | None = Field(
        None, gt=0, le=1000, description="Passes over the training set (instead of max_steps)."
    )
    batch_size: int = Field(
        4,
        ge=1,
        le=4096,
        description=(
            "Prompts per optimizer step, over all GPUs: with resources.gpus N, each GPU takes "
            "batch_size / N of them (the same run on 1 or N GPUs)."
        ),
    )
    grad_accum: int = Field(
        1,
        ge=1,
        le=1024,
        description=(
            "Micro-batches each GPU splits its share of a step's prompts into (one forward and "
            "backward each; more means less memory)."
        ),
    )
    lr: float = Field(2e-5, gt=0, le=1.0, description="Peak learning rate (AdamW).")
    schedule: Literal["cosine", "linear", "constant"] = Field(
        "cosine", description="Learning-rate schedule after warmup."
    )
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Share of steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping by global norm.")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Random seed for data order and init.")
    temperature: float = Field(
        0.7, ge=0.0, le=5.0, description="Sampling temperature of on-policy rollouts (0: greedy)."
    )
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling of rollouts.")
    max_new_tokens: int = Field(
        64, ge=1, le=32768, description="Generation budget per rollout (tokens)."
    )
    rollout_engine: EvalEngine = Field(
        "auto",
        description=(
            "Sampler of on-policy rollouts: 'hf' (transformers generate on the student), "
            "'vllm' (a vLLM engine in the training process, given the student's weights after "
            "every optimizer step; needs the vllm package, a CUDA device and resources.gpus 1) "
            "or 'auto' (vLLM where it can run, else HF)."
        ),
    )
    rollout_gpu_memory: float = Field(
        0.3,
        gt=0.0,
        lt=1.0,
        description=(
            "With vLLM rollouts: the share of the GPU's memory the vLLM engine takes for its "
            "weights and KV cache (the rest stays with training)."
        ),
    )
    on_policy_fraction: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description=(
            "GKD's lambda: the share of on-policy distillation steps that distil on the "
            "student's own samples; the other steps distil on the gold demonstrations (fixed "
            "data). Drawn per step from the seed. 1: always on-policy."
        ),
    )
    checkpoint_every: int = Field(
        0, ge=0, description="Save a checkpoint every N steps (0: only at the end or on stop)."
    )
    sample_every: int = Field(
        0, ge=0, description="Log sample completions every N steps (0: never)."
    )

    @model_validator(mode="before")
    @classmethod
    def _epochs_replace_steps(cls, data: Any) -> Any:
        # Giving `epochs` alone means "train by epochs": the default max_steps steps aside.
        if isinstance(data, Mapping) and data.get("epochs") is not None and "max_steps" not in data:
            return {**data, "max_steps": None}
        return data

    @model_validator(mode="after")
    def _rules(self) -> TrainConfig:
        if self.max_steps is None and self.epochs is None:
            raise field_error(("max_steps",), "set max_steps or epochs", None)
        if self.max_steps is not None and self.epochs is not None:
            raise field_error(("epochs",), "set either max_steps or epochs, not both", self.epochs)
        if self.batch_size % self.grad_accum:
            raise field_error(
                ("grad_accum",),
                f"must divide batch_size ({self.batch_size}) into equal micro-batches",
                self.grad_accum,
            )
        return self


# --- the divergence and the five components ----------------------------------------------------


class DivergenceConfig(ConfigBlock):
    alpha: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description=(
            "0: forward KL(teacher||student); 1: reverse KL(student||teacher); between: "
            "generalized JSD with mixture alpha*teacher + (1-alpha)*student."
        ),
    )
    temperature: float = Field(
        0.7, gt=0.0, le=10.0, description="Both models' logits are divided by this."
    )


class AgreementConfig(ConfigBlock):
    enabled: bool = Field(
        False, description="Down-weight tokens where auxiliary contexts disagree."
    )
    granularity: Literal["token", "sequence"] = Field(
        "sequence", description="Weight each token, or each whole sequence."
    )
    context_source: Literal["random", "retrieval", "induction"] = Field(
        "retrieval",
        description="Auxiliary contexts: random donors, nearest donors, or induced instructions.",
    )
    num_auxiliary_contexts: int = Field(
        3, ge=2, le=32, description="K auxiliary contexts scored per completion."
    )
    gamma_agreement: float = Field(
        0.01, ge=0.0, description="Agreement strength; 0 makes every weight 1."
    )
    agreement_stat: Literal["var", "range"] = Field(
        "var", description="Disagreement across contexts: variance or max-min of log-probs."
    )


class EmaConfig(ConfigBlock):
    enabled: bool = Field(False, description="The teacher follows an EMA of the student.")
    ref_model_sync_steps: int = Field(
        10, ge=1, description="Update the EMA teacher every N optimizer steps."
    )
    ref_model_mixup_beta: float = Field(
        0.9, ge=0.0, le=1.0, description="theta_T <- beta*theta_T + (1-beta)*theta_S."
    )


class ContrastiveConfig(ConfigBlock):
    enabled: bool = Field(False, description="Push away from a wrong-answer teacher context.")
    contrastive_weight: float = Field(0.1, ge=0.0, description="Weight of the contrastive term.")
    contrastive_margin: float = Field(0.5, ge=0.0, description="Hinge margin (log-prob units).")
    negatives: Literal["deterministic", "generated"] = Field(
        "deterministic",
        description="Wrong answers: built by rule (wrong option, code mutation) or by the model.",
    )


class FeatureMatchingConfig(ConfigBlock):
    enabled: bool = Field(False, description="Match final hidden states to the teacher's.")
    final_layer_distill_weight: float = Field(
        0.1, ge=0.0, description="Weight of the hidden-state MSE (joint mode)."
    )
    mode: Literal["joint", "repr"] = Field(
        "joint", description="joint: add to the distillation loss; repr: replace it."
    )


class ClippingConfig(ConfigBlock):
    enabled: bool = Field(False, description="Cap the per-token divergence.")
    token_clip: float | None = Field(
        None, gt=0.0, description="Fixed cap (10 when enabled and no quantile is given)."
    )
    token_clip_quantile: float | None = Field(
        None, gt=0.0, le=1.0, description="Cap at this quantile of the batch's token divergences."
    )

    @model_validator(mode="before")
    @classmethod
    def _default_cap(cls, data: Any) -> Any:
        if (
            isinstance(data, Mapping)
            and data.get("enabled")
            and data.get("token_clip") is None
            and data.get("token_clip_quantile") is None
        ):
            return {**data, "token_clip": 10.0}
        return data

    @model_validator(mode="after")
    def _one_cap(self) -> ClippingConfig:
        if self.token_clip is not None and self.token_clip_quantile is not None:
            raise field_error(
                ("token_clip_quantile",),
                "set either token_clip or token_clip_quantile, not both",
                self.token_clip_quantile,
            )
        return self


class ResourcesConfig(ConfigBlock):
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where to train: auto picks a GPU when one is visible."
    )
    gpus: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "GPUs for one run: more than 1 starts one process per GPU under accelerate (DDP) "
            "and splits train.batch_size between them."
        ),
    )
    fsdp: bool = Field(
        False,
        description=(
            "With several GPUs, shard weights, gradients and optimizer state over them (FSDP) "
            "instead of a full copy on each (DDP): less memory per GPU, more communication. "
            "Rollouts and teacher passes gather the full weights."
        ),
    )

    @model_validator(mode="after")
    def _gpus_need_cuda(self) -> ResourcesConfig:
        if self.device == "cpu" and self.gpus > 1:
            raise field_error(("gpus",), "more than one GPU needs device cuda or auto", self.gpus)
        if self.fsdp and self.gpus < 2:
            raise field_error(("fsdp",), "shards over several GPUs: set gpus to 2 or more", True)
        return self


# --- the run ----------------------------------------------------------------------------------

#: Options that exclude each other: setting one on top of a preset clears the preset's other.
EXCLUSIVE_PAIRS = (
    ("train", "max_steps", "epochs"),
    ("clipping", "token_clip", "token_clip_quantile"),
)


class RunConfig(ConfigBlock):
    """Everything needed to reproduce a run. `preset` names the recipe it was built from."""

    name: str | None = Field(None, max_length=200, description="Optional display name.")
    preset: str | None = Field(
        None,
        description="Recipe the config starts from; the other fields of the file override it.",
    )
    objective: Objective = Field(
        "on_policy_distill",
        description=(
            "on_policy_distill: the UniSD loop (student samples, teacher scores); sft: imitate the "
            "gold demonstrations; ssd: imitate the base model's own samples; none: no training."
        ),
    )
    model: ModelConfig = Field(default_factory=ModelConfig, description="Base model.")
    data: DataConfig = Field(default_factory=DataConfig, description="Training data.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Optimisation.")
    divergence: DivergenceConfig = Field(
        default_factory=DivergenceConfig,
        description="Per-token divergence between teacher and student.",
    )
    agreement: AgreementConfig = Field(
        default_factory=AgreementConfig,
        description="Multi-teacher agreement weights.",
    )
    ema: EmaConfig = Field(default_factory=EmaConfig, description="EMA teacher.")
    contrastive: ContrastiveConfig = Field(
        default_factory=ContrastiveConfig,
        description="Token-level contrastive term.",
    )
    feature_matching: FeatureMatchingConfig = Field(
        default_factory=FeatureMatchingConfig,
        description="Final-layer feature matching.",
    )
    clipping: ClippingConfig = Field(
        default_factory=ClippingConfig,
        description="Divergence clipping.",
    )
    upstream_compat: bool = Field(
        False,
        description=(
            "Reproduce the released code exactly: weighted loss normaliser (sequence weights "
            "cancel) and, under LoRA, an EMA teacher that never moves."
        ),
    )
    resources: ResourcesConfig = Field(
        default_factory=ResourcesConfig,
        description="Hardware for the run.",
    )

    @model_validator(mode="before")
    @classmethod
    def _start_from_preset(cls, data: Any) -> Any:
        """`preset: NAME` starts from that preset; everything else in the input overrides it."""
        if not isinstance(data, Mapping) or data.get("preset") is None:
            return data
        from unisd_core.presets import PRESETS  # lazy: presets are built from this module

        name = data["preset"]
        if not isinstance(name, str) or name not in PRESETS:
            # Raised here (before field validation) so the error points at `preset`.
            raise field_error(
                ("preset",), f"unknown preset {name!r}; choose one of {sorted(PRESETS)}", name
            )
        base = PRESETS[name].model_dump(mode="json", exclude={"preset"})
        for block, first, second in EXCLUSIVE_PAIRS:
            override = data.get(block)
            if isinstance(override, Mapping) and isinstance(base.get(block), dict):
                for mine, other in ((first, second), (second, first)):
                    if override.get(mine) is not None and other not in override:
                        base[block][other] = None
        return deep_merge(base, dict(data))

    @model_validator(mode="after")
    def _components_need_distillation(self) -> RunConfig:
        if self.objective != "on_policy_distill":
            for component in COMPONENTS:
                if getattr(self, component).enabled:
                    raise field_error(
                        (component, "enabled"),
                        f"components act on the on-policy distillation loss; objective is "
                        f"{self.objective!r} (set objective: on_policy_distill)",
                        True,
                    )
        return self

    @model_validator(mode="after")
    def _batch_splits_over_gpus(self) -> RunConfig:
        gpus, train = self.resources.gpus, self.train
        if gpus > 1 and train.batch_size % (gpus * train.grad_accum):
            raise field_error(
                ("train", "batch_size"),
                f"must split evenly over resources.gpus={gpus} GPUs and grad_accum="
                f"{train.grad_accum} micro-batches each (a multiple of {gpus * train.grad_accum})",
                train.batch_size,
            )
        return self

    @model_validator(mode="after")
    def _vllm_rollouts_on_one_gpu(self) -> RunConfig:
        if self.train.rollout_engine == "vllm" and self.resources.gpus > 1:
            raise field_error(
                ("train", "rollout_engine"),
                "vLLM rollouts run one engine in the training process: use resources.gpus 1, "
                "or 'auto'/'hf' (HF generate on every GPU)",
                "vllm",
            )
        return self

    def enabled_components(self) -> tuple[str, ...]:
        return tuple(c for c in COMPONENTS if getattr(self, c).enabled)

    def canonical_json(self) -> str:
        """Key-sorted compact JSON: equal configs give equal strings (and hashes)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> RunConfig:
        raw = yaml.safe_load(text) or {}
        if not isinstance(raw, dict):
            raise ValueError("a config file must hold a mapping at the top level")
        return cls.model_validate(raw)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge mappings; values of `override` win, nested mappings merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def parse_overrides(assignments: Iterable[str]) -> dict[str, Any]:
    """Turn `["train.lr=1e-4", "model.name_or_path=x"]` into a nested dict.

    Values are parsed as YAML scalars, so `true`, `3` and `1e-4` get their natural types.
    """
    nested: dict[str, Any] = {}
    for item in assignments:
        path, sep, raw_value = item.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(keys):
            raise ValueError(f"--set expects dotted.path=value, got {item!r}")
        value = _parse_scalar(raw_value)
        cursor = nested
        for key in keys[:-1]:
            cursor = cursor.setdefault(key, {})
            if not isinstance(cursor, dict):
                raise ValueError(f"--set {item!r} conflicts with another --set on {key!r}")
        cursor[keys[-1]] = value
    return nested


def _parse_scalar(text: str) -> Any:
    if not text.strip():
        return ""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        # YAML 1.1 reads `1e-4` (no dot) as a string; users mean a number.
        try:
            return float(value)
        except ValueError:
            return value
    return value


def build_config(
    raw: Mapping[str, Any] | None = None,
    *,
    preset: str | None = None,
    overrides: Iterable[str] = (),
) -> RunConfig:
    """The one way the CLI builds a config: file contents, then --preset, then --set on top."""
    data = dict(raw or {})
    if preset is not None:
        data["preset"] = preset
    return RunConfig.model_validate(deep_merge(data, parse_overrides(overrides)))
