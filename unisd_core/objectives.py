"""The on-policy self-distillation objective: the enabled components combined into one loss.

`distillation_objective` is a pure function of the scored tensors of one micro-batch and the
config; the trainer does the forwards, this module does the arithmetic (method.md sections 2-3):

    L = reduce(clip(D_alpha(teacher, student)), weights = agreement)      (loss/distill)
      + contrastive_weight * reduce(hinge(student, gold teacher, negative teacher))
      + final_layer_distill_weight * reduce(MSE(student hidden, teacher hidden))

With feature matching in `repr` mode the feature term replaces the distillation term (the
reference code's `match_repr`; the distillation loss is still logged).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from unisd_core.config import RunConfig
from unisd_core.losses import (
    agreement_weights,
    clip_divergence,
    contrastive_hinge,
    disagreement,
    feature_mse,
    fraction_clipped,
    hinge_violations,
    reduce_per_sequence,
    token_divergence,
)
from unisd_core.scoring import token_logps

#: Rows of the vocabulary-wide divergence computed at once; bounds its memory (method.md 0.5).
DIVERGENCE_CHUNK_ROWS = 256


@dataclass
class ScoredBatch:
    """Everything the objective needs for one micro-batch (B rows, T completion positions)."""

    completion_ids: Tensor  # [B, T]
    mask: Tensor  # [B, T]
    student_logits: Tensor  # [B, T, V], with gradient
    teacher_logits: Tensor  # [B, T, V], gold-context teacher
    student_hidden: Tensor | None = None  # [B, T, H]
    teacher_hidden: Tensor | None = None  # [B, T, H]
    auxiliary_logps: Tensor | None = None  # [K, B, T], temperature 1
    negative_logps: Tensor | None = None  # [B, T], divergence temperature


@dataclass
class ObjectiveResult:
    loss: Tensor
    metrics: dict[str, float] = field(default_factory=dict)


def _masked_mean(values: Tensor, mask: Tensor) -> float:
    m = mask.bool()
    if int(m.sum()) == 0:
        return 0.0
    return float(values.detach()[m].float().mean())


def distillation_objective(cfg: RunConfig, batch: ScoredBatch) -> ObjectiveResult:
    """Total loss of one micro-batch (not yet divided by the accumulation count) + diagnostics."""
    mask = batch.mask
    tau = cfg.divergence.temperature
    metrics: dict[str, float] = {}

    per_token = token_divergence(
        batch.student_logits,
        batch.teacher_logits,
        alpha=cfg.divergence.alpha,
        temperature=tau,
        chunk_size=DIVERGENCE_CHUNK_ROWS,
    )
    metrics["divergence/token_mean"] = _masked_mean(per_token, mask)

    if cfg.clipping.enabled:
        clipped = clip_divergence(
            per_token,
            mask,
            max_value=cfg.clipping.token_clip,
            quantile=cfg.clipping.token_clip_quantile,
        )
        metrics["clip/fraction_clipped"] = fraction_clipped(per_token, clipped, mask)
        per_token = clipped

    weights: Tensor | None = None
    if cfg.agreement.enabled:
        if batch.auxiliary_logps is None:
            raise ValueError("agreement is enabled but no auxiliary contexts were scored")
        agree = cfg.agreement
        weights = agreement_weights(
            batch.auxiliary_logps,
            mask,
            gamma=agree.gamma_agreement,
            granularity=agree.granularity,
            stat=agree.agreement_stat,
        )
        spread = disagreement(
            batch.auxiliary_logps, mask, granularity=agree.granularity, stat=agree.agreement_stat
        )
        metrics["agreement/weight_mean"] = _masked_mean(weights, mask)
        masked = weights.detach()[mask.bool()]
        metrics["agreement/weight_min"] = float(masked.min()) if masked.numel() else 1.0
        metrics["agreement/disagreement"] = (
            float(spread.mean()) if agree.granularity == "sequence" else _masked_mean(spread, mask)
        )

    distill = reduce_per_sequence(per_token, mask, weights, compat=cfg.upstream_compat)
    metrics["loss/distill"] = float(distill.detach())
    total = distill

    if cfg.feature_matching.enabled:
        if batch.student_hidden is None or batch.teacher_hidden is None:
            raise ValueError("feature matching is enabled but hidden states were not kept")
        feat = reduce_per_sequence(feature_mse(batch.student_hidden, batch.teacher_hidden), mask)
        metrics["features/mse"] = float(feat.detach())
        if cfg.feature_matching.mode == "repr":
            total = feat
        else:
            total = total + cfg.feature_matching.final_layer_distill_weight * feat

    if cfg.contrastive.enabled:
        if batch.negative_logps is None:
            raise ValueError("contrastive is enabled but no negative context was scored")
        ids = batch.completion_ids
        student_lp = token_logps(batch.student_logits, ids, temperature=tau)
        positive_lp = token_logps(batch.teacher_logits, ids, temperature=tau)
        hinge = contrastive_hinge(
            student_lp, positive_lp, batch.negative_logps, margin=cfg.contrastive.contrastive_margin
        )
        con = reduce_per_sequence(hinge, mask)
        metrics["contrastive/loss"] = float(con.detach())
        metrics["contrastive/violation_rate"] = _masked_mean(hinge_violations(hinge).float(), mask)
        total = total + cfg.contrastive.contrastive_weight * con

    metrics["loss/total"] = float(total.detach())
    return ObjectiveResult(loss=total, metrics=metrics)


def negative_log_likelihood(logits: Tensor, completion_ids: Tensor, mask: Tensor) -> Tensor:
    """Per-sequence mean NLL of the completion (SFT and SSD), then the batch mean."""
    nll = -token_logps(logits, completion_ids)
    return reduce_per_sequence(nll, mask)


def mean_metrics(parts: list[dict[str, float]]) -> dict[str, float]:
    """Average micro-batch diagnostics key by key (each micro-batch has equal size)."""
    keys = {key for part in parts for key in part}
    return {
        key: sum(part[key] for part in parts if key in part)
        / max(1, sum(1 for part in parts if key in part))
        for key in sorted(keys)
    }
