"""Trainer config: cross-field rules name the field; presets; overrides on top of presets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from unisd_core.config import RunConfig, build_config
from unisd_core.presets import PRESET_DESCRIPTIONS, PRESETS

PAPER_ROWS = {
    "base",
    "sft",
    "gkd",
    "sdft",
    "opsd",
    "ssd",
    "agree",
    "ema",
    "contrast",
    "match",
    "clip",
    "unisd_star",
}


def paths(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in err["loc"]) for err in exc.errors()]


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (
            {"clipping": {"enabled": True, "token_clip": 1.0, "token_clip_quantile": 0.9}},
            "clipping.token_clip_quantile",
        ),
        ({"train": {"max_steps": 5, "epochs": 1}}, "train.epochs"),
        ({"train": {"max_steps": None}}, "train.max_steps"),
        ({"train": {"batch_size": 4, "grad_accum": 3}}, "train.grad_accum"),
        ({"objective": "sft", "agreement": {"enabled": True}}, "agreement.enabled"),
        ({"objective": "ssd", "clipping": {"enabled": True}}, "clipping.enabled"),
        ({"divergence": {"alpha": 1.5}}, "divergence.alpha"),
        ({"agreement": {"num_auxiliary_contexts": 1}}, "agreement.num_auxiliary_contexts"),
        ({"agreement": {"granularity": "word"}}, "agreement.granularity"),
        ({"ema": {"ref_model_mixup_beta": 2}}, "ema.ref_model_mixup_beta"),
        ({"feature_matching": {"mode": "both"}}, "feature_matching.mode"),
        ({"resources": {"device": "cpu", "gpus": 2}}, "resources.gpus"),
        ({"model": {"lora": {"r": 0}}}, "model.lora.r"),
        ({"objective": "distill"}, "objective"),
        ({"preset": "sft", "agreement": {"enabled": True}}, "agreement.enabled"),
    ],
)
def test_rules_name_the_field(raw: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        RunConfig.model_validate(raw)
    assert path in paths(info.value)


def test_every_field_has_a_description() -> None:
    def walk(model: type) -> list[str]:
        missing = []
        for name, info in model.model_fields.items():  # type: ignore[attr-defined]
            if not info.description:
                missing.append(f"{model.__name__}.{name}")
            annotation = info.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                missing += walk(annotation)
        return missing

    assert walk(RunConfig) == []


def test_presets_are_the_paper_rows_with_descriptions() -> None:
    assert set(PRESETS) == PAPER_ROWS
    assert set(PRESET_DESCRIPTIONS) == PAPER_ROWS
    for name, cfg in PRESETS.items():
        assert cfg.preset == name
        assert RunConfig.model_validate({"preset": name}) == cfg


def test_paper_hyper_parameters() -> None:
    star = PRESETS["unisd_star"]
    assert star.enabled_components() == ("agreement", "ema", "contrastive", "feature_matching")
    assert (star.agreement.granularity, star.agreement.context_source) == ("token", "retrieval")
    assert star.agreement.gamma_agreement == 0.001
    assert (star.ema.ref_model_sync_steps, star.ema.ref_model_mixup_beta) == (10, 0.98)
    assert (star.contrastive.contrastive_weight, star.contrastive.contrastive_margin) == (0.01, 0.1)
    assert star.feature_matching.final_layer_distill_weight == 0.01
    assert star.divergence.alpha == 0.0
    assert PRESETS["agree"].agreement.granularity == "sequence"
    assert PRESETS["match"].feature_matching.mode == "repr"
    assert PRESETS["clip"].clipping.token_clip == 10.0
    assert PRESETS["sdft"].divergence.alpha == 1.0
    assert PRESETS["gkd"].divergence.alpha == 0.5
    assert PRESETS["base"].objective == "none"
    assert PRESETS["ssd"].objective == "ssd"
    assert all(PRESETS[n].model.lora.enabled for n in PAPER_ROWS - {"base"})


def test_exclusive_options_override_a_preset() -> None:
    cfg = build_config({"preset": "clip", "clipping": {"token_clip_quantile": 0.9}})
    assert (cfg.clipping.token_clip, cfg.clipping.token_clip_quantile) == (None, 0.9)
    cfg = build_config({}, preset="sft", overrides=["train.epochs=2"])
    assert (cfg.train.max_steps, cfg.train.epochs) == (None, 2.0)
    assert RunConfig.model_validate({"train": {"epochs": 1}}).train.max_steps is None
    assert RunConfig.model_validate({"clipping": {"enabled": True}}).clipping.token_clip == 10.0


def test_components_combine_freely() -> None:
    cfg = build_config(
        {},
        overrides=[
            "clipping.enabled=true",
            "clipping.token_clip_quantile=0.8",
            "contrastive.enabled=true",
            "feature_matching.enabled=true",
            "feature_matching.mode=repr",
            "upstream_compat=true",
        ],
    )
    assert cfg.enabled_components() == ("contrastive", "feature_matching", "clipping")
    assert RunConfig.from_yaml(cfg.to_yaml()) == cfg
