from __future__ import annotations

import pytest
import torch
from transformers import GenerationConfig

from tests.core.evaluation.tiny_lm import tiny_model, tiny_tokenizer
from unisd_core import generation
from unisd_core.generation import _cut_at_eos, encode_chat, generate


@pytest.fixture(scope="module")
def lm():  # type: ignore[no-untyped-def]
    return tiny_model(), tiny_tokenizer()


def _prompts() -> list[list[int]]:
    return [[5, 6, 7], [8], [9, 10, 11, 12, 13, 14, 15], [20, 21], [30, 31, 32, 33]]


def test_batched_greedy_matches_one_by_one(lm) -> None:  # type: ignore[no-untyped-def]
    model, tok = lm
    batched = generate(model, tok, _prompts(), max_new_tokens=8, batch_size=4)
    single = generate(model, tok, _prompts(), max_new_tokens=8, batch_size=1)
    assert [g.completion_ids for g in batched] == [g.completion_ids for g in single]
    for prompt, gen in zip(_prompts(), batched, strict=True):
        assert gen.prompt_ids == prompt  # input order kept although batches are length-sorted
        assert 1 <= len(gen.completion_ids) <= 8
        assert gen.finished == (gen.completion_ids[-1] == tok.eos_token_id)


def test_seeded_sampling_repeats_and_differs_by_seed(lm) -> None:  # type: ignore[no-untyped-def]
    model, tok = lm
    kwargs = {"max_new_tokens": 12, "temperature": 1.0, "batch_size": 2}
    a = generate(model, tok, _prompts(), seed=3, **kwargs)
    b = generate(model, tok, _prompts(), seed=3, **kwargs)
    c = generate(model, tok, _prompts(), seed=4, **kwargs)
    assert [g.completion_ids for g in a] == [g.completion_ids for g in b]
    assert [g.completion_ids for g in a] != [g.completion_ids for g in c]


def test_completions_stop_at_first_eos() -> None:
    model, tok = tiny_model(eos_bias=3.0), tiny_tokenizer()
    gens = generate(model, tok, _prompts(), max_new_tokens=30, temperature=1.0, seed=0)
    assert any(g.finished for g in gens)
    for gen in gens:
        assert tok.eos_token_id not in gen.completion_ids[:-1]
        assert "<eos>" not in gen.text


def test_cut_at_eos_keeps_the_eos() -> None:
    assert _cut_at_eos([4, 5, 1, 0, 0], [1]) == ([4, 5, 1], True)
    assert _cut_at_eos([4, 5, 6], [1, 2]) == ([4, 5, 6], False)


def test_encode_chat_without_template_and_left_truncation() -> None:
    tok = tiny_tokenizer()
    ids = encode_chat(tok, [{"role": "user", "content": "w1 w2 w3"}])
    assert len(ids) > 3
    assert encode_chat(tok, [{"role": "user", "content": "w1 w2 w3"}], max_length=2) == ids[-2:]


def test_bad_arguments_are_rejected(lm) -> None:  # type: ignore[no-untyped-def]
    model, tok = lm
    assert generate(model, tok, [], max_new_tokens=4) == []
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, tok, [[3]], max_new_tokens=0)
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, tok, [[]], max_new_tokens=2)


def _hf_greedy(model, tok, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:  # type: ignore[no-untyped-def]
    """The reference: HF `generate`, greedy, on the same left-padded batch."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=tok.eos_token_id,
        pad_token_id=0,
    )
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    return [_cut_at_eos(row, [tok.eos_token_id])[0] for row in out[:, width:].tolist()]


@pytest.mark.parametrize("eos_bias", [0.0, 2.0])
def test_greedy_equals_hf_generate(eos_bias: float) -> None:
    """Our decoding loop picks exactly HF generate's greedy tokens, EOS stops included."""
    model, tok = tiny_model(seed=1, eos_bias=eos_bias).eval(), tiny_tokenizer()
    prompts = _prompts()
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    ours = generate(model, tok, prompts, max_new_tokens=20, batch_size=len(prompts))
    expected = _hf_greedy(model, tok, [prompts[i] for i in order], 20)
    assert [ours[i].completion_ids for i in order] == expected


def test_sampling_follows_the_distribution() -> None:
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2, 0.0]]).repeat(20000, 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        drawn = generation._sample(probs, 1.0)
    counts = torch.bincount(drawn, minlength=5).float() / len(drawn)
    assert counts[1] == 0 and counts[4] == 0  # zero-probability tokens are never drawn
    assert torch.allclose(counts, probs[0], atol=0.015)


def test_top_p_keeps_the_smallest_nucleus() -> None:
    probs = torch.tensor([[0.1, 0.5, 0.05, 0.3, 0.05]]).repeat(20000, 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        drawn = generation._sample(probs, 0.75)  # 0.5 + 0.3 reach 0.75: only tokens 1 and 3
    counts = torch.bincount(drawn, minlength=5).float() / len(drawn)
    assert set(drawn.unique().tolist()) == {1, 3}
    assert abs(float(counts[1]) - 0.5 / 0.8) < 0.015


def test_inverse_cdf_at_the_top_of_the_range(monkeypatch: pytest.MonkeyPatch) -> None:
    """A uniform draw that rounds up to the total lands on the last token of positive weight."""
    weights = torch.tensor([[0.2, 0.8, 0.0, 0.0]])
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.ones(1, 1))
    assert generation._inverse_cdf(weights).tolist() == [1]


def test_min_new_tokens_masks_eos() -> None:
    model = tiny_model(eos_bias=6.0).eval()
    ids = torch.tensor([[5, 6, 7]])
    with torch.inference_mode():
        free = generation._decode(
            model,
            ids,
            torch.ones_like(ids),
            max_new_tokens=10,
            temperature=0.0,
            top_p=1.0,
            eos_ids=[1],
            pad_id=0,
        )
        forced = generation._decode(
            model,
            ids,
            torch.ones_like(ids),
            max_new_tokens=10,
            temperature=0.0,
            top_p=1.0,
            eos_ids=[1],
            pad_id=0,
            min_new_tokens=10,
        )
    assert free.shape[1] < 10 and free[0, -1] == 1  # EOS-biased: stops early
    assert forced.shape[1] == 10 and 1 not in forced[0].tolist()


def test_rejects_bad_top_p(lm) -> None:  # type: ignore[no-untyped-def]
    model, tok = lm
    with pytest.raises(ValueError, match="top_p"):
        generate(model, tok, [[3]], max_new_tokens=2, temperature=1.0, top_p=0.0)
