from __future__ import annotations

import pytest

from tests.core.evaluation.tiny_lm import tiny_model, tiny_tokenizer
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
