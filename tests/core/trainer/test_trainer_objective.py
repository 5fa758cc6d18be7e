"""The objective on synthetic tensors: components combine as documented; compat differs."""

from __future__ import annotations

import pytest
import torch

from unisd_core.config import RunConfig
from unisd_core.objectives import ScoredBatch, distillation_objective

B, T, V, H, K = 2, 4, 9, 5, 3


def batch(seed: int = 0) -> ScoredBatch:
    g = torch.Generator().manual_seed(seed)
    return ScoredBatch(
        completion_ids=torch.randint(0, V, (B, T), generator=g),
        mask=torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]]),
        student_logits=torch.randn(B, T, V, generator=g, requires_grad=True),
        teacher_logits=torch.randn(B, T, V, generator=g),
        student_hidden=torch.randn(B, T, H, generator=g, requires_grad=True),
        teacher_hidden=torch.randn(B, T, H, generator=g),
        auxiliary_logps=torch.randn(K, B, T, generator=g) * 3,
        negative_logps=-torch.rand(B, T, generator=g) * 5,
    )


def cfg(**raw: object) -> RunConfig:
    return RunConfig.model_validate(raw)


def test_plain_distillation_has_only_the_distill_term() -> None:
    out = distillation_objective(cfg(), batch())
    assert out.metrics["loss/total"] == pytest.approx(out.metrics["loss/distill"])
    assert "features/mse" not in out.metrics
    out.loss.backward()


def test_weights_add_up() -> None:
    raw = {
        "contrastive": {"enabled": True, "contrastive_weight": 0.3},
        "feature_matching": {"enabled": True, "final_layer_distill_weight": 0.2},
    }
    m = distillation_objective(cfg(**raw), batch()).metrics
    expected = m["loss/distill"] + 0.3 * m["contrastive/loss"] + 0.2 * m["features/mse"]
    assert m["loss/total"] == pytest.approx(expected, rel=1e-5)


def test_repr_mode_replaces_the_distillation_term() -> None:
    m = distillation_objective(
        cfg(feature_matching={"enabled": True, "mode": "repr"}), batch()
    ).metrics
    assert m["loss/total"] == pytest.approx(m["features/mse"])


def test_sequence_agreement_acts_by_default_and_cancels_in_compat() -> None:
    # Compat cancels a sequence weight w when w * |y| >= 1 (method.md 3.1): gamma keeps w ~ 0.6.
    agree = {"enabled": True, "granularity": "sequence", "gamma_agreement": 0.05}
    plain = distillation_objective(cfg(), batch()).metrics["loss/distill"]
    intended = distillation_objective(cfg(agreement=agree), batch()).metrics
    compat = distillation_objective(cfg(agreement=agree, upstream_compat=True), batch()).metrics
    assert intended["agreement/weight_min"] < 1.0
    assert intended["loss/distill"] < plain
    assert compat["loss/distill"] == pytest.approx(plain, rel=1e-5)


def test_clipping_caps_the_distill_loss() -> None:
    plain = distillation_objective(cfg(), batch()).metrics["loss/distill"]
    m = distillation_objective(
        cfg(clipping={"enabled": True, "token_clip_quantile": 0.5}), batch()
    ).metrics
    assert 0.0 < m["clip/fraction_clipped"] < 1.0
    assert m["loss/distill"] < plain
