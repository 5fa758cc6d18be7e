"""The UniSD loss terms as pure torch functions (stable public names; see contracts.md)."""

from __future__ import annotations

from unisd_core.losses.agreement import agreement_weights, disagreement
from unisd_core.losses.clipping import clip_divergence, clip_threshold, fraction_clipped
from unisd_core.losses.contrastive import contrastive_hinge, hinge_violations
from unisd_core.losses.divergence import token_divergence
from unisd_core.losses.features import feature_mse
from unisd_core.losses.reduction import reduce_per_sequence

__all__ = [
    "agreement_weights",
    "clip_divergence",
    "clip_threshold",
    "contrastive_hinge",
    "disagreement",
    "feature_mse",
    "fraction_clipped",
    "hinge_violations",
    "reduce_per_sequence",
    "token_divergence",
]
