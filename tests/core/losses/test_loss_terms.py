"""Agreement weights, contrastive hinge, feature MSE, clipping and the reduction, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from unisd_core.losses import (
    agreement_weights,
    clip_divergence,
    contrastive_hinge,
    disagreement,
    feature_mse,
    fraction_clipped,
    reduce_per_sequence,
)

# --- agreement -------------------------------------------------------------------------------


def test_token_weights_by_hand() -> None:
    # K=2, B=1, T=3. Token variances (unbiased): (a-b)^2 / 2.
    ctx = torch.tensor([[[0.0, -1.0, -2.0]], [[0.0, -3.0, -2.5]]])
    mask = torch.ones(1, 3)
    d = disagreement(ctx, mask, granularity="token", stat="var")
    assert torch.allclose(d, torch.tensor([[0.0, 2.0, 0.125]]))
    w = agreement_weights(ctx, mask, gamma=1.0, granularity="token", stat="var", quantile=1.0)
    # s = max(d) = 2 -> ratios 0, 1, 1/16.
    expected = torch.tensor([[1.0, 1 / 2, 1 / (1 + 1 / 16)]])
    assert torch.allclose(w, expected)


def test_token_weights_cap_and_floor() -> None:
    ctx = torch.tensor([[[0.0, 0.0, 0.0, 0.0]], [[0.0, -1.0, -1.0, -100.0]]])
    mask = torch.ones(1, 4)
    w = agreement_weights(
        ctx, mask, gamma=1000.0, granularity="token", stat="range", quantile=0.5, cap=10.0
    )
    # range d = 0, 1, 1, 100; median of masked d = 1; d/s capped at 10 -> weight floored at 0.01.
    assert torch.allclose(w, torch.tensor([[1.0, 0.01, 0.01, 0.01]]))


def test_token_weights_ignore_masked_positions() -> None:
    ctx = torch.tensor([[[0.0, -1.0, 0.0]], [[0.0, -2.0, -50.0]]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    w = agreement_weights(ctx, mask, gamma=1.0, granularity="token", stat="var", quantile=1.0)
    # The masked outlier neither sets the scale nor gets a weight other than 1.
    assert torch.allclose(w, torch.tensor([[1.0, 0.5, 1.0]]))


def test_sequence_weights_by_hand() -> None:
    ctx = torch.tensor(
        [
            [[-1.0, -1.0, 9.0], [0.0, 0.0, 0.0]],
            [[-3.0, -3.0, 9.0], [0.0, 0.0, 0.0]],
        ]
    )  # K=2, B=2, T=3
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    d = disagreement(ctx, mask, granularity="sequence", stat="var")
    # Sequence 0: means -1 and -3 (masked token ignored), population variance 1.
    assert torch.allclose(d, torch.tensor([1.0, 0.0]))
    w = agreement_weights(ctx, mask, gamma=0.5, granularity="sequence", stat="var")
    assert torch.allclose(w, torch.tensor([[math.exp(-0.5)] * 2 + [1.0], [1.0] * 3]))


def test_single_context_means_full_agreement() -> None:
    ctx = torch.randn(1, 2, 4)
    w = agreement_weights(ctx, torch.ones(2, 4), gamma=5.0, granularity="token", stat="var")
    assert torch.equal(w, torch.ones(2, 4))


# --- contrastive -----------------------------------------------------------------------------


def test_contrastive_hinge_by_hand_and_gradients() -> None:
    s = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    a = torch.tensor([[-1.0, -1.0]], requires_grad=True)
    b = torch.tensor([[-3.0, -2.0]], requires_grad=True)
    out = contrastive_hinge(s, a, b, margin=0.5)
    # token 0: 0.5 + 0 - 2 < 0 -> 0; token 1: 0.5 + 1 - 0 = 1.5.
    assert torch.allclose(out, torch.tensor([[0.0, 1.5]]))
    out.sum().backward()
    assert s.grad is not None
    assert s.grad.abs().sum() > 0
    assert a.grad is None
    assert b.grad is None


def test_contrastive_zero_when_teachers_agree_with_student_and_margin_zero() -> None:
    s = torch.randn(2, 3)
    assert torch.equal(contrastive_hinge(s, s, s, margin=0.0), torch.zeros(2, 3))


# --- features --------------------------------------------------------------------------------


def test_feature_mse_by_hand_and_detached_teacher() -> None:
    hs = torch.zeros(1, 2, 4, requires_grad=True)
    ht = torch.tensor([[[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, 0.0]]], requires_grad=True)
    out = feature_mse(hs, ht)
    assert torch.allclose(out, torch.tensor([[1.0, 1.0]]))
    out.sum().backward()
    assert hs.grad is not None
    assert ht.grad is None
    assert torch.equal(feature_mse(ht, ht), torch.zeros(1, 2))


# --- clipping --------------------------------------------------------------------------------


def test_clip_fixed_value_zeroes_gradient_of_clipped_tokens() -> None:
    x = torch.tensor([[1.0, 5.0, 20.0]], requires_grad=True)
    mask = torch.ones(1, 3)
    out = clip_divergence(x, mask, max_value=5.0)
    assert torch.equal(out.detach(), torch.tensor([[1.0, 5.0, 5.0]]))
    out.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad, torch.tensor([[1.0, 1.0, 0.0]]))
    assert fraction_clipped(x, out, mask) == pytest.approx(1 / 3)


def test_clip_quantile_uses_only_masked_tokens() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0, 1000.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    out = clip_divergence(x, mask, quantile=0.5)
    assert torch.allclose(out, torch.tensor([[1.0, 2.0, 2.5, 2.5, 2.5]]))
    assert fraction_clipped(x, out, mask) == pytest.approx(0.5)


def test_clip_requires_exactly_one_threshold() -> None:
    x = torch.ones(1, 2)
    with pytest.raises(ValueError, match="exactly one"):
        clip_divergence(x, x)
    with pytest.raises(ValueError, match="exactly one"):
        clip_divergence(x, x, max_value=1.0, quantile=0.5)


# --- reduction -------------------------------------------------------------------------------


def test_reduction_is_mean_of_sequence_means() -> None:
    x = torch.tensor([[1.0, 3.0, 100.0], [2.0, 2.0, 2.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert reduce_per_sequence(x, mask).item() == pytest.approx((2.0 + 2.0) / 2)


def test_sequence_weight_acts_by_default_but_cancels_in_compat() -> None:
    x = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    mask = torch.ones(2, 2)
    w = torch.tensor([[0.5, 0.5], [1.0, 1.0]])
    # Intended: sequence 0 contributes half its mean.
    assert reduce_per_sequence(x, mask, w).item() == pytest.approx((0.5 * 2 + 2) / 2)
    # Reference code: sum(w*l)/sum(w) = 2 for sequence 0 -> the weight cancels.
    assert reduce_per_sequence(x, mask, w, compat=True).item() == pytest.approx(2.0)
    unweighted = reduce_per_sequence(x, mask).item()
    assert reduce_per_sequence(x, mask, w, compat=True).item() == pytest.approx(unweighted)


def test_compat_token_weights_redistribute_within_sequence() -> None:
    x = torch.tensor([[4.0, 0.0]])
    mask = torch.ones(1, 2)
    w = torch.tensor([[1.0, 3.0]])
    # (4*1 + 0*3) / max(4, 1) = 1.
    assert reduce_per_sequence(x, mask, w, compat=True).item() == pytest.approx(1.0)
    assert reduce_per_sequence(x, mask, w).item() == pytest.approx(2.0)


def test_reduction_all_masked_sequence_counts_zero_and_gradient_masked() -> None:
    x = torch.tensor([[1.0, 2.0], [5.0, 5.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    loss = reduce_per_sequence(x, mask)
    assert loss.item() == pytest.approx(0.75)
    loss.backward()
    assert x.grad is not None
    assert torch.equal(x.grad[1], torch.zeros(2))
