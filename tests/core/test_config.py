"""RunConfig: validation with field paths, presets, overrides, canonical form, torch-free import."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from unisd_core.config import RunConfig, build_config, parse_overrides


def error_paths(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in err["loc"]) for err in exc.errors()]


def test_defaults_are_valid_and_frozen() -> None:
    cfg = RunConfig()
    assert cfg.model.name_or_path == "builtin:tiny-random"
    with pytest.raises(ValidationError):
        cfg.train.max_steps = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"train": {"max_steps": -1}}, "train.max_steps"),
        ({"train": {"lr": 0}}, "train.lr"),
        ({"train": {"unknown": 1}}, "train.unknown"),
        ({"bogus": 1}, "bogus"),
        ({"preset": "nope"}, "preset"),
        ({"data": {"benchmark": "imagenet"}}, "data.benchmark"),
        ({"data": {"source": "s3://x"}}, "data.source"),
        ({"model": {"name_or_path": "builtin:gpt9"}}, "model.name_or_path"),
        ({"data": {"eval_batch_size": 0}}, "data.eval_batch_size"),
        ({"data": {"eval_max_new_tokens": 0}}, "data.eval_max_new_tokens"),
        ({"data": {"evaluate_after_training": "sometimes"}}, "data.evaluate_after_training"),
    ],
)
def test_invalid_values_name_the_field(raw: dict, path: str) -> None:
    with pytest.raises(ValidationError) as info:
        RunConfig.model_validate(raw)
    assert path in error_paths(info.value)


def test_preset_is_the_base_and_the_file_overrides_it() -> None:
    cfg = RunConfig.model_validate({"preset": "sft", "train": {"max_steps": 7}})
    assert cfg.preset == "sft"
    assert cfg.train.max_steps == 7
    assert cfg.train.lr == RunConfig.model_validate({"preset": "sft"}).train.lr


def test_yaml_round_trip_and_stable_hash() -> None:
    cfg = RunConfig.model_validate({"preset": "sft", "name": "a", "train": {"seed": 3}})
    again = RunConfig.from_yaml(cfg.to_yaml())
    assert again == cfg
    assert again.config_hash() == cfg.config_hash()
    assert RunConfig.model_validate({"train": {"seed": 4}}).config_hash() != cfg.config_hash()


def test_evaluation_settings_default_on_and_round_trip() -> None:
    data = RunConfig().data
    assert (data.evaluate_after_training, data.eval_batch_size, data.eval_max_new_tokens) == (
        True,
        8,
        None,
    )
    assert RunConfig.model_validate({"preset": "base"}).data.evaluate_after_training
    cfg = build_config(
        preset="sft",
        overrides=["data.evaluate_after_training=false", "data.eval_max_new_tokens=16"],
    )
    assert (cfg.data.evaluate_after_training, cfg.data.eval_max_new_tokens) == (False, 16)
    assert RunConfig.from_yaml(cfg.to_yaml()) == cfg
    assert RunConfig.model_validate_json(cfg.canonical_json()) == cfg


def test_overrides_parse_types_and_apply_on_top() -> None:
    assert parse_overrides(["train.lr=1e-4", "train.max_steps=3", "name=x y"]) == {
        "train": {"lr": 1e-4, "max_steps": 3},
        "name": "x y",
    }
    cfg = build_config({"train": {"max_steps": 9}}, preset="sft", overrides=["train.max_steps=2"])
    assert (cfg.preset, cfg.train.max_steps) == ("sft", 2)
    with pytest.raises(ValueError, match=r"dotted\.path=value"):
        parse_overrides(["train.lr"])


def test_config_module_does_not_import_torch() -> None:
    code = "import sys, unisd_core.config, unisd_core.presets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
