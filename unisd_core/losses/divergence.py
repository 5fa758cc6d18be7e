"""Per-token divergence between the student's and the teacher's next-token distributions.

Shapes: logits are `[B, T, V]` (batch, completion positions, vocabulary); the result is `[B, T]`,
the divergence summed over the vocabulary. Only the student receives a gradient.

`alpha` picks the divergence (method.md section 2):

* `alpha == 0`: forward KL, `KL(p_T || p_S)`;
* `alpha == 1`: reverse KL, `KL(p_S || p_T)`;
* otherwise the generalised JSD `alpha * KL(p_T || M) + (1 - alpha) * KL(p_S || M)` with
  `M = alpha * p_T + (1 - alpha) * p_S`.

With `chunk_size` set, rows (positions) are processed `chunk_size` at a time by a custom autograd
function that keeps nothing of size `[B, T, V]` except the gradient it must return: both the
forward and the backward recompute the softmaxes chunk by chunk. This keeps a 150k-vocabulary
divergence within a fixed memory budget, and avoids the several vocabulary-sized intermediates
that autograd would otherwise store per position. Within a chunk, rows go through the
vocabulary-wide arithmetic a few at a time (`PIECE_ELEMENTS` per temporary), so every
intermediate stays cache-sized: a 256 x 49k chunk's temporaries are 50 MB each, which the
allocator maps fresh from the OS (page faults) on every use; pieces of ~1M elements are recycled.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

#: Elements (rows x vocabulary) of one piece of the chunked computation: ~4 MB per fp32
#: temporary. Measured on a 2-core CPU at a 49k vocabulary: 3x faster than 256-row pieces.
PIECE_ELEMENTS = 1 << 20


def token_divergence(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    alpha: float,
    temperature: float = 1.0,
    chunk_size: int | None = None,
) -> Tensor:
    """Divergence per position `[B, T]` between softmax(teacher/temperature) and the student's.

    The teacher is detached. Computed and returned in at least float32.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits differ in shape: {tuple(student_logits.shape)} vs "
            f"{tuple(teacher_logits.shape)}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    *lead, vocab = student_logits.shape
    teacher_logits = teacher_logits.detach()
    if chunk_size is None:
        per_row = _divergence_rows(
            student_logits.reshape(-1, vocab), teacher_logits.reshape(-1, vocab), alpha, temperature
        )
    else:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        per_row = _ChunkedDivergence.apply(
            student_logits.reshape(-1, vocab),
            teacher_logits.reshape(-1, vocab),
            alpha,
            temperature,
            chunk_size,
        )
    return per_row.reshape(lead)


def _upcast(x: Tensor) -> Tensor:
    """At least float32: half-precision softmaxes over large vocabularies lose the tail."""
    return x if x.dtype == torch.float64 else x.float()


def _log_probs(logits: Tensor, temperature: float) -> Tensor:
    """log softmax(logits / temperature), without the scaled copy at temperature 1."""
    scaled = _upcast(logits)
    if temperature != 1.0:
        scaled = scaled / temperature
    return F.log_softmax(scaled, dim=-1)


def _divergence_rows(student: Tensor, teacher: Tensor, alpha: float, temperature: float) -> Tensor:
    """Plain autograd version on `[N, V]` rows; also the reference the chunked path is tested on."""
    log_s = _log_probs(student, temperature)
    log_t = _log_probs(teacher, temperature)
    if alpha == 0.0:
        return _kl(log_t, log_s)
    if alpha == 1.0:
        return _kl(log_s, log_t)
    log_m = _log_mixture(log_t, log_s, alpha)
    return alpha * _kl(log_t, log_m) + (1.0 - alpha) * _kl(log_s, log_m)


def _kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p || q) summed over the last dimension; 0 * log 0 counts as 0."""
    return torch.sum(torch.exp(log_p) * (log_p - log_q), dim=-1)


def _log_mixture(log_t: Tensor, log_s: Tensor, alpha: float) -> Tensor:
    """log(alpha * p_T + (1 - alpha) * p_S), stable in log space (one fused logaddexp rather
    than a stacked logsumexp, which makes several copies of both operands)."""
    return torch.logaddexp(log_t + math.log(alpha), log_s + math.log1p(-alpha))


def _divergence_grad_rows(
    student: Tensor, teacher: Tensor, alpha: float, temperature: float
) -> Tensor:
    """d(divergence)/d(student logits) for `[N, V]` rows, in closed form.

    Writing `g = d loss / d p_S`, the softmax Jacobian gives `p_S * (g - <p_S, g>) / temperature`:
    * forward KL: `g = -p_T / p_S`, so the gradient is `(p_S - p_T) / temperature`;
    * reverse KL: `g = log p_S - log p_T + 1` (the constant cancels);
    * JSD: `g = (1 - alpha) * (log p_S - log M)` (the terms in `p / M` cancel exactly).
    """
    return _value_and_grad_rows(student, teacher, alpha, temperature, value=False)[1]


def _value_and_grad_rows(
    student: Tensor, teacher: Tensor, alpha: float, temperature: float, *, value: bool = True
) -> tuple[Tensor | None, Tensor]:
    """The divergence per row (when `value`) and its closed-form gradient (see
    `_divergence_grad_rows`), sharing the log-softmaxes and the log-mixture between the two.
    Every expression is the one `_divergence_rows` and the gradient use on their own, so the
    results are the same bits as computing them apart."""
    log_s = _log_probs(student, temperature)
    log_t = _log_probs(teacher, temperature)
    p_s = torch.exp(log_s)
    per_row: Tensor | None = None
    if alpha == 0.0:
        if value:
            per_row = _kl(log_t, log_s)
        return per_row, (p_s - torch.exp(log_t)) / temperature
    if alpha == 1.0:
        if value:
            per_row = _kl(log_s, log_t)
        g = log_s - log_t
    else:
        log_m = _log_mixture(log_t, log_s, alpha)
        if value:
            per_row = alpha * _kl(log_t, log_m) + (1.0 - alpha) * _kl(log_s, log_m)
        g = (1.0 - alpha) * (log_s - log_m)
    centred = g - torch.sum(p_s * g, dim=-1, keepdim=True)
    return per_row, p_s * centred / temperature


def _piece_rows(chunk_size: int, vocab: int) -> int:
    """Rows per piece: at most `chunk_size` (the caller's memory bound), ~PIECE_ELEMENTS."""
    return max(1, min(chunk_size, PIECE_ELEMENTS // max(1, vocab)))


class _ChunkedDivergence(torch.autograd.Function):
    """Forward and backward piece by piece (see the module docstring).

    Full-precision students (float32/64) get their gradient computed in the forward, from the
    same log-softmaxes as the value, and kept until the backward, which only scales it by the
    incoming per-row gradient: the backward then recomputes nothing (two log-softmaxes, the
    log-mixture and the exponentials over the vocabulary), and the logits need not be kept for
    it; the price is one `[N, V]` tensor held from the forward to the backward. A
    half-precision student keeps the recompute-in-backward path: its gradient is rounded to
    its dtype once, after the scaling, as before.
    """

    @staticmethod
    def forward(
        ctx: Any,
        student: Tensor,
        teacher: Tensor,
        alpha: float,
        temperature: float,
        chunk_size: int,
    ) -> Tensor:
        ctx.alpha, ctx.temperature = alpha, temperature
        ctx.rows = _piece_rows(chunk_size, student.shape[-1])
        ctx.grad = None
        early = ctx.needs_input_grad[0] and student.dtype in (torch.float32, torch.float64)
        if not early:
            ctx.save_for_backward(student, teacher)
        if student.shape[0] == 0:
            return _upcast(student).new_zeros((0,))
        grad = torch.empty_like(student) if early else None
        pieces = []
        with torch.no_grad():
            for start in range(0, student.shape[0], ctx.rows):
                rows = slice(start, start + ctx.rows)
                if grad is None:
                    pieces.append(
                        _divergence_rows(student[rows], teacher[rows], alpha, temperature)
                    )
                    continue
                value, local = _value_and_grad_rows(
                    student[rows], teacher[rows], alpha, temperature
                )
                assert value is not None
                pieces.append(value)
                grad[rows] = local
        ctx.grad = grad
        return torch.cat(pieces)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        if ctx.grad is not None:
            # A fresh tensor, not the kept one scaled in place: the graph may be run backward
            # more than once (retain_graph, Jacobians).
            kept = ctx.grad
            grad = torch.empty_like(kept)
            for start in range(0, kept.shape[0], ctx.rows):
                rows = slice(start, start + ctx.rows)
                torch.mul(kept[rows], grad_out[rows, None], out=grad[rows])
            return grad, None, None, None, None
        student, teacher = ctx.saved_tensors
        grad = torch.empty_like(student)
        for start in range(0, student.shape[0], ctx.rows):
            rows = slice(start, start + ctx.rows)
            local = _divergence_grad_rows(student[rows], teacher[rows], ctx.alpha, ctx.temperature)
            grad[rows] = (local * grad_out[rows, None]).to(grad.dtype)
        return grad, None, None, None, None
