"""Three steps of every preset on the tiny model: each enabled component reports, and acts."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from tests.core.trainer.trainer_helpers import fast_config
from unisd_core import train
from unisd_core.callbacks import ListSink
from unisd_core.presets import PRESETS

ALWAYS = ("loss/total", "train/lr", "train/grad_norm", "sys/tokens_per_s", "sys/peak_mem_gb")
COMPONENT_KEYS = {
    "agreement": ("agreement/weight_mean", "agreement/weight_min", "agreement/disagreement"),
    "ema": ("ema/teacher_drift",),
    "contrastive": ("contrastive/loss", "contrastive/violation_rate"),
    "feature_matching": ("features/mse",),
    "clipping": ("clip/fraction_clipped",),
}
# Strong enough settings that a working component cannot look like a no-op in three steps.
VISIBLE = {
    "agreement": {"gamma_agreement": 5.0},
    "ema": {"ref_model_sync_steps": 1, "ref_model_mixup_beta": 0.5},
    "clipping": {"token_clip": None, "token_clip_quantile": 0.5},
}


def values(sink: ListSink, key: str) -> list[float]:
    return [value for _, value in sink.points[key]]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs_three_steps_with_its_diagnostics(name: str) -> None:
    preset = PRESETS[name]
    overrides = {c: VISIBLE[c] for c in preset.enabled_components() if c in VISIBLE}
    cfg = fast_config(name, **overrides)
    sink = ListSink()
    result = train(cfg, sink)
    if name == "base":
        assert result.steps_completed == 0
        assert sink.points == {}
        return
    assert result.steps_completed == 3
    assert not result.stopped_early
    for key in ALWAYS:
        assert [step for step, _ in sink.points[key]] == [1, 2, 3], key
        assert all(math.isfinite(v) for v in values(sink, key)), key
    assert all(v > 0 for v in values(sink, "sys/tokens_per_s"))
    for component, keys in COMPONENT_KEYS.items():
        enabled = component in cfg.enabled_components()
        for key in keys:
            assert (key in sink.points) == enabled, (component, key)
    if cfg.agreement.enabled:
        assert min(values(sink, "agreement/weight_min")) < 1.0
        assert max(values(sink, "agreement/disagreement")) > 0.0
    if cfg.ema.enabled:
        assert max(values(sink, "ema/teacher_drift")) > 0.0
        assert values(sink, "ema/tensors_updated")[-1] > 0
    if cfg.contrastive.enabled:
        assert max(values(sink, "contrastive/loss")) > 0.0
        assert 0.0 < max(values(sink, "contrastive/violation_rate")) <= 1.0
    if cfg.feature_matching.enabled:
        assert max(values(sink, "features/mse")) > 0.0
    if cfg.clipping.enabled:
        assert max(values(sink, "clip/fraction_clipped")) > 0.0
    if cfg.objective == "on_policy_distill":
        assert "loss/distill" in sink.points
        # rollouts stop at max_new_tokens; gold-data steps (GKD) at max_completion_length
        limit = max(cfg.train.max_new_tokens, cfg.data.max_completion_length)
        assert all(0 < v <= limit for v in values(sink, "train/completion_length"))


@pytest.mark.parametrize(
    "overrides",
    [
        {
            "agreement": {
                "enabled": True,
                "context_source": "induction",
                "granularity": "token",
                "gamma_agreement": 1.0,
            },
            "contrastive": {"enabled": True, "negatives": "generated"},
            "data": {"max_train_examples": 12},
            "train": {"max_steps": 2},
        },
        {
            "agreement": {"enabled": True, "context_source": "random", "gamma_agreement": 50.0},
            "train": {"grad_accum": 2, "max_steps": 2},
            "data": {"max_train_examples": 12},
            "upstream_compat": True,
        },
    ],
    ids=["induction-generated-negatives", "random-grad-accum-compat"],
)
def test_other_context_sources_and_negatives(overrides: dict) -> None:
    sink = ListSink()
    result = train(fast_config(**overrides), sink)
    assert result.info["agreement_contexts"] == overrides["agreement"]["context_source"]
    assert max(values(sink, "agreement/disagreement")) > 0.0
    assert all(math.isfinite(v) for v in values(sink, "loss/total"))
    if overrides["agreement"]["context_source"] == "induction":
        cached = {
            p.name.split("-")[0] for p in Path(os.environ["UNISD_TEACHER_CACHE_DIR"]).iterdir()
        }
        assert cached == {"induction", "negatives"}
        again = ListSink()
        train(fast_config(**overrides), again)  # served from the cache: same texts, same losses
        assert again.points["loss/total"] == sink.points["loss/total"]


def test_gkd_mixes_gold_data_steps_and_opsd_stays_on_policy() -> None:
    """GKD's lambda: a seeded share of steps distils on the gold data, without generating."""
    mixed = ListSink()
    train(fast_config("gkd", train={"max_steps": 8}), mixed)
    flags = values(mixed, "train/on_policy")
    assert 0 < sum(flags) < len(flags)  # lambda 0.5 over 8 steps: both kinds of step
    generated = {step for step, _ in mixed.points["sys/generation_s"]}
    assert generated == {step for step, on in mixed.points["train/on_policy"] if on == 1.0}
    again = ListSink()
    train(fast_config("gkd", train={"max_steps": 8}), again)
    assert values(again, "train/on_policy") == flags  # drawn from the seed

    on_policy = ListSink()
    train(fast_config("opsd", train={"max_steps": 3}), on_policy)
    assert values(on_policy, "train/on_policy") == [1.0, 1.0, 1.0]
    gold = ListSink()
    train(fast_config("opsd", train={"max_steps": 2, "on_policy_fraction": 0.0}), gold)
    assert values(gold, "train/on_policy") == [0.0, 0.0] and "sys/generation_s" not in gold.points
