"""Final-layer feature matching (method.md section 3.4).

Shapes: hidden states `[B, T, H]` at the completion positions; output `[B, T]`.
"""

from __future__ import annotations

from torch import Tensor


def feature_mse(student_hidden: Tensor, teacher_hidden: Tensor) -> Tensor:
    """Mean over the hidden dimension of the squared difference; the teacher is detached."""
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(
            f"hidden states differ in shape: {tuple(student_hidden.shape)} vs "
            f"{tuple(teacher_hidden.shape)}"
        )
    diff = student_hidden.float() - teacher_hidden.detach().float()
    return (diff * diff).mean(-1)
