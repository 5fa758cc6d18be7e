"""The run configuration: one typed, frozen, validated object from the UI to the trainer.

Torch-free on purpose: the API, the UI and the analysis engine import it. Field descriptions are
user-facing text (the UI shows them as tooltips), so keep them short and precise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
Benchmark = Literal[
    "scienceqa", "gpqa", "mbpp", "humaneval", "cose", "toolalpaca", "gsm8k", "medmcqa"
]

BUILTIN_MODELS = ("builtin:tiny-random", "builtin:smollm2-135m-instruct")


class ConfigBlock(BaseModel):
    """Base of every config block: immutable, and unknown keys are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(ConfigBlock):
    name_or_path: str = Field(
        "builtin:tiny-random",
        min_length=1,
        description=(
            "Base model: a Hugging Face id, a local directory, or a built-in model "
            "(builtin:tiny-random for tests, builtin:smollm2-135m-instruct for demos)."
        ),
    )

    @field_validator("name_or_path")
    @classmethod
    def _known_builtin(cls, value: str) -> str:
        if value.startswith("builtin:") and value not in BUILTIN_MODELS:
            raise ValueError(f"unknown built-in model {value!r}; choose one of {BUILTIN_MODELS}")
        return value


class DataConfig(ConfigBlock):
    benchmark: Benchmark = Field("scienceqa", description="Training benchmark.")
    source: str = Field(
        "bundled",
        description=(
            "Where the data comes from: 'bundled' (small samples shipped with UniSD Studio), "
            "'local:<dir>' (the original files in a folder) or 'hf' (Hugging Face datasets)."
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


class TrainConfig(ConfigBlock):
    max_steps: int = Field(10, ge=1, le=10_000_000, description="Optimizer steps to run.")
    batch_size: int = Field(4, ge=1, le=4096, description="Prompts per optimizer step.")
    lr: float = Field(2e-5, gt=0, le=1.0, description="Peak learning rate (AdamW).")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Random seed for data order and init.")


class RunConfig(ConfigBlock):
    """Everything needed to reproduce a run. `preset` names the recipe it was built from."""

    name: str | None = Field(None, max_length=200, description="Optional display name.")
    preset: str | None = Field(
        None,
        description="Recipe the config starts from; the other fields of the file override it.",
    )
    model: ModelConfig = Field(default_factory=ModelConfig, description="Base model.")
    data: DataConfig = Field(default_factory=DataConfig, description="Training data.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Optimisation.")

    @model_validator(mode="before")
    @classmethod
    def _start_from_preset(cls, data: Any) -> Any:
        """`preset: NAME` starts from that preset; everything else in the input overrides it."""
        if not isinstance(data, Mapping) or data.get("preset") is None:
            return data
        from unisd_core.presets import PRESETS  # lazy: presets are built from this module

        name = data["preset"]
        if not isinstance(name, str) or name not in PRESETS:
            return data  # `_known_preset` reports it, with the error located at `preset`
        base = PRESETS[name].model_dump(mode="json", exclude={"preset"})
        return deep_merge(base, dict(data))

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        from unisd_core.presets import PRESETS

        if value is not None and value not in PRESETS:
            raise ValueError(f"unknown preset {value!r}; choose one of {sorted(PRESETS)}")
        return value

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
