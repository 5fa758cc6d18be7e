"""token_divergence: edge cases against KL computed directly, chunking, gradients."""

from __future__ import annotations

import pytest
import torch

from unisd_core.losses import divergence, token_divergence

B, T, V = 2, 5, 11


def _logits(seed: int, scale: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, V, generator=g, dtype=torch.float64) * scale


def _direct_kl(p_logits: torch.Tensor, q_logits: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """KL(p || q) from probabilities, written independently of the implementation."""
    p = torch.softmax(p_logits / tau, -1)
    q = torch.softmax(q_logits / tau, -1)
    return (p * (p.log() - q.log())).sum(-1)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("chunk", [None, 3])
def test_zero_on_identical_inputs(alpha: float, chunk: int | None) -> None:
    z = _logits(0)
    out = token_divergence(z, z.clone(), alpha=alpha, chunk_size=chunk)
    assert out.shape == (B, T)
    assert torch.allclose(out, torch.zeros_like(out), atol=1e-12)


@pytest.mark.parametrize("tau", [1.0, 0.7, 2.0])
def test_alpha_zero_is_forward_kl(tau: float) -> None:
    s, t = _logits(1), _logits(2)
    out = token_divergence(s, t, alpha=0.0, temperature=tau)
    assert torch.allclose(out, _direct_kl(t, s, tau))


@pytest.mark.parametrize("tau", [1.0, 0.7])
def test_alpha_one_is_reverse_kl(tau: float) -> None:
    s, t = _logits(1), _logits(2)
    out = token_divergence(s, t, alpha=1.0, temperature=tau)
    assert torch.allclose(out, _direct_kl(s, t, tau))


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
def test_jsd_matches_mixture_definition(alpha: float) -> None:
    s, t = _logits(3), _logits(4)
    p_s, p_t = torch.softmax(s, -1), torch.softmax(t, -1)
    m = alpha * p_t + (1 - alpha) * p_s
    expected = alpha * (p_t * (p_t / m).log()).sum(-1) + (1 - alpha) * (p_s * (p_s / m).log()).sum(
        -1
    )
    assert torch.allclose(token_divergence(s, t, alpha=alpha), expected)


def test_jsd_half_is_symmetric_and_bounded() -> None:
    s, t = _logits(5, scale=10.0), _logits(6, scale=10.0)
    a = token_divergence(s, t, alpha=0.5)
    b = token_divergence(t, s, alpha=0.5)
    assert torch.allclose(a, b)
    assert bool((a <= torch.log(torch.tensor(2.0)) + 1e-9).all())
    assert bool((a >= 0).all())


def test_temperature_divides_logits() -> None:
    s, t = _logits(7), _logits(8)
    assert torch.allclose(
        token_divergence(s, t, alpha=0.3, temperature=0.5),
        token_divergence(s / 0.5, t / 0.5, alpha=0.3),
    )


@pytest.mark.parametrize("alpha", [0.0, 0.25, 1.0])
@pytest.mark.parametrize("tau", [1.0, 0.7])
def test_chunked_equals_unchunked_values_and_gradients(alpha: float, tau: float) -> None:
    s0, t = _logits(9), _logits(10)
    s_plain = s0.clone().requires_grad_(True)
    s_chunk = s0.clone().requires_grad_(True)
    upstream = torch.rand(B, T, dtype=torch.float64)
    plain = token_divergence(s_plain, t, alpha=alpha, temperature=tau)
    chunked = token_divergence(s_chunk, t, alpha=alpha, temperature=tau, chunk_size=4)
    assert torch.allclose(plain, chunked)
    (plain * upstream).sum().backward()
    (chunked * upstream).sum().backward()
    assert s_plain.grad is not None
    assert s_chunk.grad is not None
    assert torch.allclose(s_plain.grad, s_chunk.grad, atol=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_pieces_smaller_than_the_chunk_change_nothing(
    alpha: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows go through the vocabulary-wide arithmetic in cache-sized pieces within a chunk."""
    s0, t = _logits(17), _logits(18)
    whole = s0.clone().requires_grad_(True)
    pieces = s0.clone().requires_grad_(True)
    upstream = torch.rand(B, T, dtype=torch.float64)
    out_whole = token_divergence(whole, t, alpha=alpha, temperature=0.7, chunk_size=B * T)
    monkeypatch.setattr(divergence, "PIECE_ELEMENTS", 3 * V)  # three rows per piece
    out_pieces = token_divergence(pieces, t, alpha=alpha, temperature=0.7, chunk_size=B * T)
    assert torch.allclose(out_whole, out_pieces, atol=1e-12)
    (out_whole * upstream).sum().backward()
    (out_pieces * upstream).sum().backward()
    assert whole.grad is not None and pieces.grad is not None
    assert torch.allclose(whole.grad, pieces.grad, atol=1e-12)


def test_chunked_gradient_passes_gradcheck() -> None:
    g = torch.Generator().manual_seed(11)
    s = torch.randn(1, 3, 5, generator=g, dtype=torch.float64).requires_grad_(True)
    t = torch.randn(1, 3, 5, generator=g, dtype=torch.float64)
    for alpha in (0.0, 0.6, 1.0):
        assert torch.autograd.gradcheck(
            lambda x, a=alpha: token_divergence(x, t, alpha=a, temperature=0.7, chunk_size=2),
            (s,),
        )


@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("tau", [1.0, 0.7])
def test_gradient_kept_from_the_forward_is_the_recomputed_one(alpha: float, tau: float) -> None:
    """Full-precision students get their gradient in the forward (shared log-softmaxes); it is
    the same bits as the gradient the backward used to recompute, and so is the value."""
    g = torch.Generator().manual_seed(21)
    s0 = torch.randn(3, 4, 50, generator=g) * 4
    t = torch.randn(3, 4, 50, generator=g) * 4
    upstream = torch.rand(3, 4, generator=g)
    s = s0.clone().requires_grad_(True)
    out = token_divergence(s, t, alpha=alpha, temperature=tau, chunk_size=5)
    (out * upstream).sum().backward()
    assert s.grad is not None
    rows_s, rows_t = s0.reshape(-1, 50), t.reshape(-1, 50)
    piece = divergence._piece_rows(5, 50)
    expected_grad = torch.cat(
        [
            divergence._divergence_grad_rows(a, b, alpha, tau) * w[:, None]
            for a, b, w in zip(
                rows_s.split(piece),
                rows_t.split(piece),
                upstream.reshape(-1).split(piece),
                strict=True,
            )
        ]
    )
    expected_value = torch.cat(
        [
            divergence._divergence_rows(a, b, alpha, tau)
            for a, b in zip(rows_s.split(piece), rows_t.split(piece), strict=True)
        ]
    )
    assert torch.equal(s.grad.reshape(-1, 50), expected_grad)
    assert torch.equal(out.detach().reshape(-1), expected_value)


def test_kept_gradient_survives_a_second_backward() -> None:
    s = _logits(19).float().requires_grad_(True)
    t = _logits(20).float()
    out = token_divergence(s, t, alpha=0.5, chunk_size=3).sum()
    (first,) = torch.autograd.grad(out, s, retain_graph=True)
    (second,) = torch.autograd.grad(out, s)
    assert torch.equal(first, second)


@pytest.mark.parametrize("chunk", [None, 2])
def test_gradient_flows_only_into_student(chunk: int | None) -> None:
    s = _logits(13).requires_grad_(True)
    t = _logits(14).requires_grad_(True)
    token_divergence(s, t, alpha=0.5, chunk_size=chunk).sum().backward()
    assert s.grad is not None
    assert s.grad.abs().sum() > 0
    assert t.grad is None


def test_float32_and_large_logits_are_finite() -> None:
    s = (_logits(15) * 30).float()
    t = (_logits(16) * 30).float()
    for alpha in (0.0, 0.5, 1.0):
        out = token_divergence(s, t, alpha=alpha, chunk_size=4)
        assert out.dtype == torch.float32
        assert bool(torch.isfinite(out).all())


def test_rejects_bad_arguments() -> None:
    s = _logits(0)
    with pytest.raises(ValueError, match="alpha"):
        token_divergence(s, s, alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        token_divergence(s, s, alpha=0.0, temperature=0.0)
    with pytest.raises(ValueError, match="shape"):
        token_divergence(s, s[:, :2], alpha=0.0)
