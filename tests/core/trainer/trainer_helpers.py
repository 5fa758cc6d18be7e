"""Small budgets so that every trainer test runs in seconds on two CPU cores."""

from __future__ import annotations

from typing import Any

from unisd_core.config import RunConfig, deep_merge

FAST: dict[str, Any] = {
    "model": {"lora": {"r": 8, "alpha": 16}},
    "data": {"max_prompt_length": 512, "max_completion_length": 8},
    "train": {"max_steps": 3, "batch_size": 2, "max_new_tokens": 6, "lr": 1e-3},
}


def fast_config(preset: str | None = None, **overrides: Any) -> RunConfig:
    raw: dict[str, Any] = deep_merge(FAST, overrides)
    if preset is not None:
        raw["preset"] = preset
    return RunConfig.model_validate(raw)
