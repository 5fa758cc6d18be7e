from __future__ import annotations

import math

import pytest
import torch
from peft import LoraConfig, get_peft_model

from tests.core.evaluation.tiny_lm import tiny_model
from unisd_core.evaluation.retention import (
    adapters_disabled,
    mean_perplexity,
    perplexity,
    retention_jsd,
    retention_metrics,
    retention_ppl,
    symmetric_jsd,
    token_logprobs,
)

PROMPTS = [[5, 6, 7], [8], [9, 10, 11, 12, 13]]
COMPLETIONS = [[20, 21, 1], [30], [40, 41, 42, 43]]


def _manual_logprobs(
    model: torch.nn.Module, prompt: list[int], completion: list[int]
) -> list[float]:
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return [float(logp[len(prompt) - 1 + t, tok]) for t, tok in enumerate(completion)]


def test_batched_token_logprobs_match_unpadded_forward() -> None:
    model = tiny_model()
    batched = token_logprobs(model, PROMPTS, COMPLETIONS, batch_size=3)
    for prompt, completion, got in zip(PROMPTS, COMPLETIONS, batched, strict=True):
        assert got == pytest.approx(_manual_logprobs(model, prompt, completion), abs=1e-4)


def test_perplexity_is_a_mean_of_per_example_perplexities() -> None:
    assert perplexity([math.log(0.5), math.log(0.5)]) == pytest.approx(2.0)
    assert perplexity([]) is None
    assert mean_perplexity([2.0, None, 4.0]) == pytest.approx(3.0)  # empty completions skipped
    assert mean_perplexity([None]) is None


def test_retention_ppl_skips_empty_outputs_and_truncates_long_prompts() -> None:
    model = tiny_model()
    mean, items = retention_ppl(model, PROMPTS, [[20, 21], [], [40]], max_length=3)
    assert items[1] is None
    assert mean == pytest.approx((items[0] + items[2]) / 2)  # type: ignore[operator]


def test_jsd_properties() -> None:
    p = torch.log_softmax(torch.randn(3, 7), dim=-1)
    q = torch.log_softmax(torch.randn(3, 7), dim=-1)
    assert torch.allclose(symmetric_jsd(p, p), torch.zeros(3), atol=1e-6)
    assert torch.allclose(symmetric_jsd(p, q), symmetric_jsd(q, p))
    assert (symmetric_jsd(p, q) <= math.log(2) + 1e-6).all()


def test_retention_under_lora_uses_the_same_model_with_adapters_disabled() -> None:
    base_copy = tiny_model()
    peft_model = get_peft_model(
        tiny_model(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    )
    provider = adapters_disabled(peft_model)
    # Fresh LoRA (B = 0) is the identity: no drift.
    jsd0, _ = retention_jsd(peft_model, provider, PROMPTS, COMPLETIONS)
    assert jsd0 == pytest.approx(0.0, abs=1e-7)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.add_(0.5 * torch.randn_like(param))
    jsd1, per_item = retention_jsd(peft_model, provider, PROMPTS, COMPLETIONS)
    assert jsd1 is not None
    assert jsd1 > 1e-4
    assert all(v is not None and v > 0 for v in per_item)
    # The provider's base is the pre-LoRA network: it scores exactly like an untouched copy.
    ppl_provider, _ = retention_ppl(provider, PROMPTS, COMPLETIONS)
    ppl_copy, _ = retention_ppl(base_copy, PROMPTS, COMPLETIONS)
    assert ppl_provider == pytest.approx(ppl_copy, rel=1e-5)
    # ...and the adapters are active again afterwards.
    after = token_logprobs(peft_model, PROMPTS, COMPLETIONS)
    assert after != token_logprobs(base_copy, PROMPTS, COMPLETIONS)


def test_retention_metrics_share_one_base_pass_and_match_the_separate_scores() -> None:
    peft_model = get_peft_model(
        tiny_model(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    )
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.add_(0.5 * torch.randn_like(param))
    provider = adapters_disabled(peft_model)
    outputs = [*COMPLETIONS[:2], []]  # an empty output has neither score
    ppl, jsd = retention_metrics(peft_model, provider, PROMPTS, outputs, batch_size=2)
    _, ppl_alone = retention_ppl(provider, PROMPTS, outputs, batch_size=2)  # its own pass
    assert ppl[2] is None and jsd[2] is None
    assert ppl[:2] == pytest.approx(ppl_alone[:2], rel=1e-5)
    assert all(value is not None and value > 0 for value in jsd[:2])
