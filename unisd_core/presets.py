"""Named recipes: the paper's rows (method.md sections 3.6 and 4) as plain RunConfigs.

A config with `preset: NAME` starts from one of these. Method hyper-parameters follow the paper's
launcher; the budget (steps, batch, generation length) is deliberately small so that every preset
runs on a CPU with the built-in tiny model. Raise `train.max_steps`/`train.batch_size` (and set a
real model) for real runs.
"""

from __future__ import annotations

from typing import Any

from unisd_core.config import RunConfig, deep_merge

#: What every training preset shares: the paper's LoRA setup and optimiser (method.md 2).
_COMMON: dict[str, Any] = {
    "model": {"lora": {"enabled": True, "r": 64, "alpha": 128, "dropout": 0.05}},
    "train": {
        "lr": 2e-5,
        "schedule": "cosine",
        "warmup_ratio": 0.1,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "seed": 42,
        "temperature": 0.7,
        "top_p": 1.0,
    },
    "divergence": {"alpha": 0.0, "temperature": 0.7},
}

_RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "base": (
        "The base model, evaluated without training (the reference row).",
        {"objective": "none"},
    ),
    "sft": (
        "Supervised fine-tuning on the gold demonstrations (off-policy, static imitation).",
        {"objective": "sft"},
    ),
    "gkd": (
        "GKD: generalized JSD (alpha 0.5) to the static gold-context teacher; half the steps on "
        "the student's samples, half on the gold data (lambda 0.5).",
        {"divergence": {"alpha": 0.5}, "train": {"on_policy_fraction": 0.5}},
    ),
    "sdft": (
        "SDFT: on-policy reverse KL to a demonstration-conditioned EMA teacher.",
        {"divergence": {"alpha": 1.0}, "ema": {"enabled": True}},
    ),
    "opsd": (
        "OPSD: on-policy JSD (alpha 0.5) to the initial model shown the gold solution.",
        {"divergence": {"alpha": 0.5}},
    ),
    "ssd": (
        "SSD: fine-tune on the base model's own samples (T 1.0, top-p 0.95); no teacher.",
        {"objective": "ssd", "train": {"temperature": 1.0, "top_p": 0.95}},
    ),
    "agree": (
        "UniSD + sequence-level agreement over 3 retrieved contexts (gamma 0.01).",
        {
            "agreement": {
                "enabled": True,
                "granularity": "sequence",
                "context_source": "retrieval",
                "num_auxiliary_contexts": 3,
                "gamma_agreement": 0.01,
                "agreement_stat": "var",
            }
        },
    ),
    "ema": (
        "UniSD + EMA teacher (every 10 steps, beta 0.9).",
        {"ema": {"enabled": True, "ref_model_sync_steps": 10, "ref_model_mixup_beta": 0.9}},
    ),
    "contrast": (
        "UniSD + token-level contrastive term (weight 0.1, margin 0.5).",
        {"contrastive": {"enabled": True, "contrastive_weight": 0.1, "contrastive_margin": 0.5}},
    ),
    "match": (
        "UniSD with final-layer feature matching only (repr mode).",
        {
            "feature_matching": {
                "enabled": True,
                "mode": "repr",
                "final_layer_distill_weight": 0.1,
            }
        },
    ),
    "clip": (
        "UniSD + per-token divergence clipping at 10.",
        {"clipping": {"enabled": True, "token_clip": 10.0}},
    ),
    "unisd_star": (
        "UniSD*: token agreement (retrieval, K 3, gamma 0.001) + EMA (10, 0.98) + "
        "contrastive (0.01, 0.1) + joint feature matching (0.01); half batch.",
        {
            "train": {"batch_size": 2},
            "agreement": {
                "enabled": True,
                "granularity": "token",
                "context_source": "retrieval",
                "num_auxiliary_contexts": 3,
                "gamma_agreement": 0.001,
                "agreement_stat": "var",
            },
            "ema": {"enabled": True, "ref_model_sync_steps": 10, "ref_model_mixup_beta": 0.98},
            "contrastive": {
                "enabled": True,
                "contrastive_weight": 0.01,
                "contrastive_margin": 0.1,
            },
            "feature_matching": {
                "enabled": True,
                "mode": "joint",
                "final_layer_distill_weight": 0.01,
            },
        },
    ),
}


def _build(name: str, recipe: dict[str, Any]) -> RunConfig:
    # Presets are validated without `preset` set (the validator would look them up while they are
    # being defined) and get their name afterwards.
    config = RunConfig.model_validate(deep_merge(_COMMON, recipe))
    return config.model_copy(update={"preset": name})


PRESETS: dict[str, RunConfig] = {
    name: _build(name, recipe) for name, (_, recipe) in _RECIPES.items()
}

PRESET_DESCRIPTIONS: dict[str, str] = {name: text for name, (text, _) in _RECIPES.items()}
