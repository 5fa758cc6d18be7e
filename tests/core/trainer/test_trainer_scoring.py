"""Completion scoring: padding and `logits_to_keep` give the same logits as unpadded rows."""

from __future__ import annotations

import torch

from unisd_core import modeling
from unisd_core.config import ModelConfig
from unisd_core.scoring import forward_completions, pack, token_logps


def test_pack_layout() -> None:
    batch = pack([[5, 6, 7], [8]], [[1, 2], [3, 4, 9]], pad_id=0)
    assert batch.prompt_width == 3
    assert batch.input_ids.tolist() == [[5, 6, 7, 1, 2, 0], [0, 0, 8, 3, 4, 9]]
    assert batch.completion_mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    assert batch.position_ids[1, 2:].tolist() == [0, 1, 2, 3]


def test_padded_scoring_matches_single_rows() -> None:
    model = modeling.load(ModelConfig()).model.eval()
    prompts = [[11, 12, 13, 14, 15], [21, 22]]
    completions = [[31, 32], [41, 42, 43]]
    batch = pack(prompts, completions, pad_id=0)
    with torch.no_grad():
        logits, hidden = forward_completions(model, batch, hidden=True)
        for row, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            full = model(torch.tensor([prompt + completion]), output_hidden_states=True)
            start = len(prompt) - 1
            expected = full.logits[0, start : start + len(completion)]
            assert torch.allclose(logits[row, : len(completion)], expected, atol=1e-5)
            states = full.hidden_states[-1][0, start : start + len(completion)]
            assert hidden is not None
            assert torch.allclose(hidden[row, : len(completion)], states, atol=1e-5)


def test_token_logps_equals_log_softmax() -> None:
    z = torch.randn(2, 3, 7)
    y = torch.randint(0, 7, (2, 3))
    expected = torch.log_softmax(z / 0.7, -1).gather(-1, y[..., None])[..., 0]
    assert torch.allclose(token_logps(z, y, temperature=0.7), expected, atol=1e-6)
