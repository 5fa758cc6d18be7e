"""Token-level contrastive hinge against a wrong-context teacher (method.md section 3.3).

Shapes: all inputs `[B, T]`, the log-probability of the sampled token under the student, the
gold-context teacher (positive) and the wrong-answer-context teacher (negative). Output `[B, T]`.
"""

from __future__ import annotations

import torch
from torch import Tensor


def contrastive_hinge(
    student_logps: Tensor, positive_logps: Tensor, negative_logps: Tensor, *, margin: float
) -> Tensor:
    """`max(0, margin + |s - a| - |s - b|)`: be at least `margin` closer to `a` than to `b`.

    Both teachers are detached, so the gradient only moves the student.
    """
    closer = (student_logps - positive_logps.detach()).abs()
    farther = (student_logps - negative_logps.detach()).abs()
    return torch.clamp(margin + closer - farther, min=0.0)


def hinge_violations(per_token: Tensor) -> Tensor:
    """Boolean `[B, T]`: where the hinge is active (the margin is not yet met)."""
    return per_token.detach() > 0
