from __future__ import annotations

import json

import pytest

from unisd_core.data import load_examples
from unisd_core.data.prompts import (
    AUX_SEPARATOR,
    DEMO_MARKER,
    SELF_DISTILLATION_INSTRUCTION,
    auxiliary_messages,
    gold_completion,
    induced_instruction_messages,
    induction_request_messages,
    negative_messages,
    student_messages,
    student_prompt_text,
    teacher_messages,
)
from unisd_core.data.schema import Example

EVAL = {
    "scienceqa": "test",
    "mbpp": "test",
    "humaneval": "test",
    "cose": "validation",
    "toolalpaca": "test",
    "gsm8k": "test",
    "medmcqa": "validation",
    "gpqa": "test",
}


def _pair(benchmark: str) -> tuple[Example, Example]:
    examples = load_examples(benchmark, split=EVAL[benchmark], limit=2)
    return examples[0], examples[1]


def _text(messages: list[dict[str, str]]) -> str:
    assert len(messages) == 1
    assert messages[0]["role"] == "user"
    return messages[0]["content"]


@pytest.mark.parametrize("benchmark", sorted(EVAL))
def test_every_context_ends_with_the_student_task(benchmark: str) -> None:
    ex, donor = _pair(benchmark)
    task = student_prompt_text(ex)
    assert _text(student_messages(ex)) == task
    teacher = _text(teacher_messages(ex))
    assert teacher.startswith(task)
    assert DEMO_MARKER in teacher
    assert gold_completion(ex) in teacher
    assert teacher.rstrip().endswith(SELF_DISTILLATION_INSTRUCTION) or ex.task == "tooluse"
    aux = _text(auxiliary_messages(ex, donor))
    assert aux.endswith(task)
    assert AUX_SEPARATOR in aux
    assert gold_completion(donor) in aux
    induced = _text(induced_instruction_messages(ex, "Be careful and brief."))
    assert "Be careful and brief." in induced
    assert task in induced


def test_mcqa_prompt_and_gold() -> None:
    ex = load_examples("scienceqa", split="test", limit=1)[0]
    text = _text(student_messages(ex))
    assert "A. " in text
    assert "B. " in text
    assert "Answer: <letter>" in text
    assert gold_completion(ex).endswith(f"Answer: {ex.answer}")
    assert gold_completion(ex).startswith("Reasoning: ")


def test_negative_context_shows_the_wrong_answer() -> None:
    ex = load_examples("cose", split="validation", limit=1)[0]
    wrong = next(letter for letter in "ABCDE" if letter != ex.answer)
    text = _text(negative_messages(ex, wrong, "Because it sounds right."))
    assert f"Answer: {wrong}" in text
    assert "Because it sounds right." in text
    assert f"Answer: {ex.answer}" not in text.split(DEMO_MARKER)[1]


def test_code_prompts_carry_tests_and_signature() -> None:
    ex = load_examples("mbpp", split="test", limit=1)[0]
    text = student_prompt_text(ex)
    for test in ex.tests:
        assert test in text
    assert ex.metadata["signature"] in text
    assert ex.answer.strip() not in text  # the student never sees the reference solution
    assert gold_completion(ex).startswith("```python\n")
    negative = _text(negative_messages(ex, "def f():\n    return 0", "An off-by-one."))
    assert "return 0" in negative
    he = load_examples("humaneval", split="test", limit=1)[0]
    assert he.question in student_prompt_text(he)


def test_tooluse_auxiliary_context_has_no_api_docs_and_no_own_answer() -> None:
    ex, donor = _pair("toolalpaca")
    aux = _text(auxiliary_messages(ex, donor))
    assert donor.metadata["instruction"] in aux
    assert aux.count("Documentation:") == 1  # only the task's own prompt has tool docs
    assert aux.index(AUX_SEPARATOR) < aux.index(ex.question)
    calls = json.loads(ex.answer)
    assert f"Action: {calls[0]['Action']}" in gold_completion(ex)
    assert "Thought:" in _text(teacher_messages(ex))


def test_auxiliary_context_rejects_the_item_itself_and_stacks_donors() -> None:
    a, b, c = load_examples("gsm8k", split="train", limit=3)
    with pytest.raises(ValueError, match="must not use the item itself"):
        auxiliary_messages(a, a)
    text = _text(auxiliary_messages(a, [b, c]))
    assert text.index(b.question) < text.index(c.question) < text.index(a.question)
    assert f"Answer: {a.answer}" not in text


def test_induction_request_lists_the_demos() -> None:
    demos = load_examples("gsm8k", split="train", limit=3)
    text = _text(induction_request_messages(demos))
    assert all(d.question in text for d in demos)
