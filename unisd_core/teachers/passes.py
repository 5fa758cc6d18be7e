"""The teacher passes of one micro-batch: every context scores the same completions.

A micro-batch of B completions is scored under B gold-context rows, K * B auxiliary rows
(agreement) and B negative rows (contrastive). Their prompts differ a lot in length (an
auxiliary prompt carries a whole solved donor example), so padding every row to the longest one
wastes most of the teacher's compute. Rows are therefore sorted by prompt length and cut into
forwards (`plan_forwards`) that trade padding against the fixed cost of one more forward; a
forward's completion width is that of its own longest completion.

What each row is kept for (method.md 0.4-0.5):
* gold rows: the full completion logits `[B, T, V]` (the divergence) and, with feature matching,
  the last hidden states `[B, T, H]`;
* auxiliary and negative rows: only the log-probability of the sampled token `[.., T]`, so their
  vocabulary-sized logits are dropped as soon as that is computed.

Positions beyond a forward's completion width are masked everywhere downstream; they hold
zeros here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from unisd_core.objectives import ScoredBatch
from unisd_core.scoring import Packed, pack

#: A forward's fixed cost in tokens of padding it must save to be worth running: a forward has
#: per-call overhead (kernel launches, mask building, one Python pass over every layer).
FORWARD_OVERHEAD_TOKENS = 128


class TeacherForward(Protocol):
    def __call__(self, batch: Packed, *, hidden: bool) -> tuple[Tensor, Tensor | None]: ...


@dataclass(frozen=True)
class Row:
    """One teacher row: a context's prompt for completion `example` (0..B-1)."""

    prompt: Sequence[int]
    example: int
    group: int  # 0: gold, 1..K: auxiliary context k, K+1: negative


def plan_forwards(
    lengths: Sequence[int],
    *,
    max_rows: int,
    overhead_tokens: int = FORWARD_OVERHEAD_TOKENS,
) -> list[list[int]]:
    """Cut rows into forwards: lists of row indices, each forward padded to its longest row.

    Exact minimum of `sum(rows * longest) + overhead * forwards` over cuts of the rows sorted by
    length (the optimum always groups rows of neighbouring lengths), at most `max_rows` per
    forward. O(n * max_rows) for n rows. Each forward lists its rows in their original order.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cost of the first j rows (longest first)
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(max(0, j - max_rows), j):
            cost = best[i] + (j - i) * lengths[order[i]] + overhead_tokens
            if cost < best[j]:
                best[j], cut[j] = cost, i
    forwards: list[list[int]] = []
    j = n
    while j > 0:
        forwards.append(sorted(order[cut[j] : j]))
        j = cut[j]
    return forwards[::-1]


def teacher_rows(
    gold: Sequence[Sequence[int]],
    auxiliary: Sequence[Sequence[Sequence[int]]] | None,
    negative: Sequence[Sequence[int]] | None,
) -> list[Row]:
    """Gold rows, then auxiliary context 1..K (`auxiliary[example][k]`), then negatives."""
    rows = [Row(p, e, 0) for e, p in enumerate(gold)]
    k = len(auxiliary[0]) if auxiliary else 0
    for j in range(k):
        assert auxiliary is not None
        rows += [Row(contexts[j], e, 1 + j) for e, contexts in enumerate(auxiliary)]
    if negative is not None:
        rows += [Row(p, e, 1 + k) for e, p in enumerate(negative)]
    return rows


def sampled_logps(logits: Tensor, token_ids: Tensor, temperature: float) -> Tensor:
    """`log softmax(logits / temperature)[y]` per position, as `scoring.token_logps` computes
    it, without the scaled copy of the logits when the temperature is 1."""
    scaled = logits.float()
    if temperature != 1.0:
        scaled = scaled / temperature
    picked = scaled.gather(-1, token_ids.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(scaled, dim=-1)


def score_contexts(
    forward: TeacherForward,
    *,
    gold: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    auxiliary: Sequence[Sequence[Sequence[int]]] | None = None,
    negative: Sequence[Sequence[int]] | None = None,
    negative_temperature: float = 1.0,
    hidden: bool = False,
    pad_id: int,
    device: torch.device,
    max_rows: int,
) -> ScoredBatch:
    """Score `completions` (one per example) under every context; see the module docstring.

    Auxiliary log-probs are at temperature 1 (agreement compares the contexts' own beliefs), the
    negative's at the divergence temperature (the contrastive hinge compares it with the
    student's and the gold teacher's at that temperature).
    """
    b = len(gold)
    rows = teacher_rows(gold, auxiliary, negative)
    k = len(auxiliary[0]) if auxiliary else 0
    width = max(1, max(len(c) for c in completions))
    ids, mask = _completion_grid(completions, width, pad_id)
    ids, mask = ids.to(device), mask.to(device)

    gold_logits: Tensor | None = None
    gold_hidden: Tensor | None = None
    other = torch.zeros((len(rows) - b, width), dtype=torch.float32, device=device)
    for forward_rows in plan_forwards([len(r.prompt) for r in rows], max_rows=max_rows):
        chosen = [rows[i] for i in forward_rows]
        batch = pack(
            [r.prompt for r in chosen], [completions[r.example] for r in chosen], pad_id=pad_id
        ).to(device)
        want_hidden = hidden and any(r.group == 0 for r in chosen)
        logits, states = forward(batch, hidden=want_hidden)
        t = batch.completion_width
        if forward_rows == list(range(b)) and t == width:
            # Exactly the gold rows, in order and at full width (e.g. no other context): the
            # forward's own tensors are the result, no copy of the vocabulary-sized logits.
            gold_logits, gold_hidden = logits, states
            continue
        for local, (index, row) in enumerate(zip(forward_rows, chosen, strict=True)):
            if row.group == 0:
                if gold_logits is None:
                    gold_logits = logits.new_zeros((b, width, logits.shape[-1]))
                gold_logits[row.example, :t] = logits[local]
                if states is not None:
                    if gold_hidden is None:
                        gold_hidden = states.new_zeros((b, width, states.shape[-1]))
                    gold_hidden[row.example, :t] = states[local]
                continue
            tau = 1.0 if row.group <= k else negative_temperature
            other[index - b, :t] = sampled_logps(logits[local], batch.completion_ids[local], tau)
        del logits, states  # this forward's vocabulary-sized tensor goes before the next one

    assert gold_logits is not None
    scored = ScoredBatch(
        completion_ids=ids,
        mask=mask,
        student_logits=torch.empty(0),
        teacher_logits=gold_logits,
        teacher_hidden=gold_hidden,
    )
    if k:
        scored.auxiliary_logps = other[: k * b].reshape(k, b, width)
    if negative is not None:
        scored.negative_logps = other[k * b :]
    return scored


def _completion_grid(
    completions: Sequence[Sequence[int]], width: int, pad_id: int
) -> tuple[Tensor, Tensor]:
    """Right-padded completion ids `[B, width]` and their float mask."""
    ids = torch.full((len(completions), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(completions), width), dtype=torch.float32)
    for row, completion in enumerate(completions):
        if completion:
            ids[row, : len(completion)] = torch.tensor(list(completion), dtype=torch.long)
            mask[row, : len(completion)] = 1.0
    return ids, mask
