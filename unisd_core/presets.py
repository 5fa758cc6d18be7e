"""Named recipes. Each preset is a plain RunConfig; a config with `preset: NAME` starts from it."""

from __future__ import annotations

from unisd_core.config import RunConfig, TrainConfig


def _preset(name: str, config: RunConfig) -> RunConfig:
    # Presets are built without `preset` set (the validator would look them up while they are
    # being defined) and get their name afterwards.
    return config.model_copy(update={"preset": name})


PRESETS: dict[str, RunConfig] = {
    "sft": _preset("sft", RunConfig(train=TrainConfig(lr=2e-5))),
}

PRESET_DESCRIPTIONS: dict[str, str] = {
    "sft": "Supervised fine-tuning on the gold demonstrations (off-policy, static imitation).",
}
