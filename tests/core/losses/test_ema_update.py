"""EMA teacher arithmetic."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unisd_core.teachers.ema import ema_update, teacher_drift


def test_ema_update_arithmetic_on_modules() -> None:
    teacher, student = nn.Linear(3, 2), nn.Linear(3, 2)
    with torch.no_grad():
        teacher.weight.fill_(1.0)
        teacher.bias.fill_(0.0)
        student.weight.fill_(3.0)
        student.bias.fill_(10.0)
    assert ema_update(teacher, student, beta=0.75) == 2
    assert torch.allclose(teacher.weight, torch.full((2, 3), 1.5))
    assert torch.allclose(teacher.bias, torch.full((2,), 2.5))
    # The student is untouched.
    assert torch.allclose(student.weight, torch.full((2, 3), 3.0))


def test_ema_repeated_updates_converge_geometrically() -> None:
    t = {"w": torch.zeros(4)}
    s = {"w": torch.ones(4)}
    for _ in range(3):
        ema_update(t, s, beta=0.5)
    assert torch.allclose(t["w"], torch.full((4,), 1 - 0.5**3))


def test_ema_beta_edges() -> None:
    t, s = {"w": torch.zeros(2)}, {"w": torch.ones(2)}
    ema_update(t, s, beta=1.0)
    assert torch.equal(t["w"], torch.zeros(2))
    ema_update(t, s, beta=0.0)
    assert torch.equal(t["w"], torch.ones(2))


def test_ema_with_nothing_matching_is_an_error() -> None:
    with pytest.raises(ValueError, match="no parameter"):
        ema_update({"a": torch.zeros(1)}, {"b": torch.zeros(1)}, beta=0.5)


def test_teacher_drift() -> None:
    s = {"w": torch.tensor([3.0, 4.0])}
    assert teacher_drift({"w": torch.tensor([3.0, 4.0])}, s) == 0.0
    assert teacher_drift({"w": torch.zeros(2)}, s) == pytest.approx(1.0)
