"""Teacher passes: length-bucketed forwards and the folded EMA adapter compute the same numbers
as one padded forward per micro-batch and peft's own adapter path."""

from __future__ import annotations

import itertools

import pytest
import torch

from tests.core.trainer.trainer_helpers import fast_config
from unisd_core.networks import EMA_ADAPTER, Networks, build_networks
from unisd_core.scoring import forward_completions, pack, token_logps
from unisd_core.teachers.ema import can_fold, folded_adapter
from unisd_core.teachers.passes import plan_forwards, score_contexts


def _cost(forwards: list[list[int]], lengths: list[int], overhead: int) -> int:
    return sum(len(f) * max(lengths[i] for i in f) + overhead for f in forwards)


def _brute_force_cost(lengths: list[int], max_rows: int, overhead: int) -> int:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best = None
    for cuts in itertools.product([False, True], repeat=len(order) - 1):
        forwards, current = [], [order[0]]
        for index, cut in zip(order[1:], cuts, strict=True):
            if cut:
                forwards.append(current)
                current = []
            current.append(index)
        forwards.append(current)
        if max(len(f) for f in forwards) <= max_rows:
            cost = _cost(forwards, lengths, overhead)
            best = cost if best is None else min(best, cost)
    assert best is not None
    return best


@pytest.mark.parametrize("max_rows", [1, 3, 32])
def test_plan_forwards_covers_every_row_once_at_least_cost(max_rows: int) -> None:
    lengths = [300, 40, 1024, 45, 1000, 390, 41, 700]
    forwards = plan_forwards(lengths, max_rows=max_rows, overhead_tokens=128)
    assert sorted(i for f in forwards for i in f) == list(range(len(lengths)))
    assert all(1 <= len(f) <= max_rows for f in forwards)
    assert _cost(forwards, lengths, 128) == _brute_force_cost(lengths, max_rows, 128)


def test_plan_forwards_keeps_equal_lengths_together() -> None:
    assert plan_forwards([256] * 20, max_rows=32) == [list(range(20))]
    assert [len(f) for f in plan_forwards([256] * 20, max_rows=8)] == [4, 8, 8]


def _perturbed_ema_networks(preset: str) -> Networks:
    torch.manual_seed(0)
    nets = build_networks(fast_config(preset), torch.device("cpu"))
    with torch.no_grad():  # zero-initialised B would make every adapter a no-op
        for name, param in nets.student.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.05)
    return nets


def _one_padded_batch(
    nets: Networks,
    gold: list[list[int]],
    aux: list[list[list[int]]],
    neg: list[list[int]],
    ys: list[list[int]],
    tau: float,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """The reference: every context row in one padded forward."""
    b, k = len(gold), len(aux[0])
    prompts = gold + [aux[e][j] for j in range(k) for e in range(b)] + neg
    batch = pack(prompts, ys * (k + 2), pad_id=0)
    logits, hidden = nets.teacher_forward(batch, hidden=True)
    ids = batch.completion_ids
    aux_lp = token_logps(logits[b : b + k * b], ids[b : b + k * b]).reshape(k, b, -1)
    neg_lp = token_logps(logits[b + k * b :], ids[b + k * b :], temperature=tau)
    return logits[:b], None if hidden is None else hidden[:b], aux_lp, neg_lp


def test_bucketed_scoring_equals_one_padded_batch() -> None:
    nets = _perturbed_ema_networks("unisd_star")
    gen = torch.Generator().manual_seed(1)

    def ids(n: int) -> list[int]:
        return torch.randint(5, 400, (n,), generator=gen).tolist()

    gold = [ids(60), ids(9)]
    aux = [[ids(200), ids(30), ids(120)], [ids(8), ids(90), ids(61)]]
    neg = [ids(15), ids(150)]
    ys = [ids(7), ids(3)]
    tau = 0.7
    scored = score_contexts(
        nets.teacher_forward,
        gold=gold,
        completions=ys,
        auxiliary=aux,
        negative=neg,
        negative_temperature=tau,
        hidden=True,
        pad_id=0,
        device=torch.device("cpu"),
        max_rows=3,
    )
    logits, hidden, aux_lp, neg_lp = _one_padded_batch(nets, gold, aux, neg, ys, tau)
    mask = scored.mask.bool()
    assert scored.completion_ids.tolist() == [ys[0], ys[1] + [0] * 4]
    assert torch.allclose(scored.teacher_logits[mask], logits[mask], atol=1e-4)
    assert scored.teacher_hidden is not None and hidden is not None
    assert torch.allclose(scored.teacher_hidden[mask], hidden[mask], atol=1e-4)
    assert scored.auxiliary_logps is not None and scored.negative_logps is not None
    assert torch.allclose(scored.auxiliary_logps[:, mask], aux_lp[:, mask], atol=1e-4)
    assert torch.allclose(scored.negative_logps[mask], neg_lp[mask], atol=1e-4)


def test_folded_ema_adapter_matches_peft_and_leaves_weights_untouched() -> None:
    nets = _perturbed_ema_networks("unisd_star")
    model = nets.student
    assert can_fold(model, EMA_ADAPTER)
    batch = pack([[5, 6, 7, 8], [9, 10]], [[11, 12], [13, 14, 15]], pad_id=0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}

    # A student forward whose backward runs after the teacher's: its gradient must not change.
    model.train()
    student_logits, _ = forward_completions(model, batch)
    model.eval()
    with torch.no_grad():
        names = [EMA_ADAPTER] * 2
        expected, expected_hidden = forward_completions(
            model, batch, hidden=True, adapter_names=names
        )
        with folded_adapter(model, EMA_ADAPTER):
            folded, folded_hidden = forward_completions(model, batch, hidden=True)
        with model.disable_adapter():
            base, _ = forward_completions(model, batch)
    assert torch.allclose(folded, expected, atol=1e-5)
    assert folded_hidden is not None and expected_hidden is not None
    assert torch.allclose(folded_hidden, expected_hidden, atol=1e-5)
    assert not torch.allclose(folded, base, atol=1e-3)  # the adapter really contributes
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name
    student_logits.sum().backward()
    assert all(p.grad is not None for p in nets.trainable_parameters())


def test_half_precision_weights_are_not_folded() -> None:
    nets = _perturbed_ema_networks("unisd_star")
    assert can_fold(nets.student, EMA_ADAPTER)
    nets.student.to(torch.bfloat16)  # a merged bf16 weight would round the adapter away
    assert not can_fold(nets.student, EMA_ADAPTER)
    assert not can_fold(nets.student, "no-such-adapter")


def test_teacher_forward_folds_the_ema_adapter() -> None:
    nets = _perturbed_ema_networks("unisd_star")
    batch = pack([[5, 6, 7], [8, 9]], [[1, 2], [3]], pad_id=0)
    logits, _ = nets.teacher_forward(batch, hidden=False)
    nets.student.eval()
    with torch.no_grad():
        names = [EMA_ADAPTER] * 2
        expected, _ = forward_completions(nets.student, batch, adapter_names=names)
    assert torch.allclose(logits, expected, atol=1e-5)


def test_folding_restores_the_weights_when_the_forward_fails() -> None:
    nets = _perturbed_ema_networks("unisd_star")
    model = nets.student.eval()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    layer = next(m for m in model.modules() if EMA_ADAPTER in getattr(m, "lora_A", {}))

    def fail(*_: object) -> None:
        raise RuntimeError("boom")

    @torch.no_grad()
    def forward_failing_inside_a_folded_layer() -> None:
        with folded_adapter(model, EMA_ADAPTER):
            # Registered after the fold's hooks, so it runs while the layer's weight is merged.
            handle = layer.base_layer.register_forward_pre_hook(fail)
            try:
                model(input_ids=torch.tensor([[1, 2, 3]]))
            finally:
                handle.remove()

    with pytest.raises(RuntimeError, match="boom"):
        forward_failing_inside_a_folded_layer()
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name


def test_gold_only_scoring_is_the_teacher_forward_itself() -> None:
    nets = build_networks(fast_config("gkd"), torch.device("cpu"))
    gold, ys = [[5, 6, 7, 8], [9, 10]], [[11, 12], [13, 14, 15]]
    scored = score_contexts(
        nets.teacher_forward,
        gold=gold,
        completions=ys,
        pad_id=0,
        device=torch.device("cpu"),
        max_rows=32,
    )
    expected, _ = nets.teacher_forward(pack(gold, ys, pad_id=0), hidden=False)
    assert torch.equal(scored.teacher_logits, expected)
    assert scored.auxiliary_logps is None and scored.negative_logps is None
    assert scored.mask.tolist() == [[1, 1, 0], [1, 1, 1]]
