"""Teacher-forced scoring of completions: logits (and hidden states) at completion positions only.

Rows are `[prompt ; completion]` with prompts left-padded and completions right-padded, so every
completion starts at the same column `P` and the model only has to project the `T` positions
`P - 1 .. P + T - 2` onto the vocabulary (`logits_to_keep`). Position ids are computed from the
attention mask, so left padding does not shift the positions a row sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Packed:
    """A padded batch of `[prompt ; completion]` rows."""

    input_ids: Tensor  # [N, P + T]
    attention_mask: Tensor  # [N, P + T]
    position_ids: Tensor  # [N, P + T]
    completion_ids: Tensor  # [N, T]
    completion_mask: Tensor  # [N, T], float
    prompt_width: int  # P

    @property
    def completion_width(self) -> int:
        return int(self.completion_ids.shape[1])

    def rows(self, start: int, stop: int) -> Packed:
        """The sub-batch of rows `start:stop` (same column layout)."""
        return Packed(
            self.input_ids[start:stop],
            self.attention_mask[start:stop],
            self.position_ids[start:stop],
            self.completion_ids[start:stop],
            self.completion_mask[start:stop],
            self.prompt_width,
        )

    def to(self, device: torch.device) -> Packed:
        return Packed(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.position_ids.to(device),
            self.completion_ids.to(device),
            self.completion_mask.to(device),
            self.prompt_width,
        )


def pack(
    prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], *, pad_id: int
) -> Packed:
    """Left-pad prompts to one width, right-pad completions to another."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every row needs a non-empty prompt")
    p_width = max(len(p) for p in prompts)
    t_width = max(1, max(len(c) for c in completions))
    n = len(prompts)
    input_ids = torch.full((n, p_width + t_width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, p_width + t_width), dtype=torch.long)
    completion_ids = torch.full((n, t_width), pad_id, dtype=torch.long)
    completion_mask = torch.zeros((n, t_width), dtype=torch.float32)
    for row, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        start = p_width - len(prompt)
        input_ids[row, start:p_width] = torch.tensor(list(prompt), dtype=torch.long)
        attention[row, start:p_width] = 1
        if completion:
            ids = torch.tensor(list(completion), dtype=torch.long)
            input_ids[row, p_width : p_width + len(completion)] = ids
            attention[row, p_width : p_width + len(completion)] = 1
            completion_ids[row, : len(completion)] = ids
            completion_mask[row, : len(completion)] = 1.0
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    return Packed(input_ids, attention, position_ids, completion_ids, completion_mask, p_width)


def forward_completions(
    model: Any, batch: Packed, *, hidden: bool = False, **model_kwargs: Any
) -> tuple[Tensor, Tensor | None]:
    """Logits `[N, T, V]` predicting each completion token, and optionally the last hidden
    states `[N, T, H]` at the same positions (the lm_head input)."""
    t_width = batch.completion_width
    p = batch.prompt_width
    # Position P-1+j predicts completion token j: exactly these T positions go through the
    # vocabulary projection. Keeping the last T+1 and dropping one made the logits a strided
    # view, which every consumer copied (reshape) and whose backward filled a T+1-row zero tensor.
    scored = torch.arange(p - 1, p - 1 + t_width, device=batch.input_ids.device)
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=scored,
        output_hidden_states=hidden,
        use_cache=False,
        **model_kwargs,
    )
    logits = out.logits
    states = None
    if hidden:
        states = out.hidden_states[-1][:, p - 1 : p - 1 + t_width, :]
    return logits, states


def token_logps(logits: Tensor, token_ids: Tensor, *, temperature: float = 1.0) -> Tensor:
    """Log-probability `[N, T]` of `token_ids` under softmax(logits / temperature).

    Computed as `z[y] - logsumexp(z)` rather than a full log-softmax, so no second
    vocabulary-sized tensor is kept for the backward pass.
    """
    scaled = logits.float() / temperature
    picked = scaled.gather(-1, token_ids.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(scaled, dim=-1)
