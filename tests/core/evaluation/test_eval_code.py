from __future__ import annotations

import pytest

from unisd_core.data import load_examples
from unisd_core.data.schema import Example
from unisd_core.evaluation.code import build_program, check_correctness, check_many, extract_code

# Wraps the entry point so every return value is perturbed (bools flipped, numbers shifted,
# strings/sequences extended): a behaviour change every HumanEval `check` must catch.
MUTATION = """

_original_{e} = {e}
def {e}(*args, **kwargs):
    result = _original_{e}(*args, **kwargs)
    if isinstance(result, bool):
        return not result
    if isinstance(result, (int, float)):
        return result + 1
    if isinstance(result, str):
        return result + "?"
    if isinstance(result, (list, tuple)):
        return type(result)(list(result) + [None])
    return "mutated"
"""


def test_extraction_rules_in_order() -> None:
    assert extract_code('{"code": "def f():\\n    return 1"}') == "def f():\n    return 1"
    text = (
        "Here:\n```text\nnot code\n```\n```python\ndef f():\n    return 2\n```\n```python\nx\n```"
    )
    assert extract_code(text) == "def f():\n    return 2\n"
    assert extract_code("```\ndef g(): pass\n```") == "def g(): pass\n"
    assert extract_code("def h(): pass") == "def h(): pass"
    assert extract_code("```python\ndef cut(): pass") == "def cut(): pass"  # unterminated fence


def test_mbpp_programs_pass_with_the_reference_and_fail_with_a_wrong_one() -> None:
    examples = load_examples("mbpp", split="test", limit=4)
    good = check_many([build_program(e, e.answer) for e in examples])
    assert [r.status for r in good] == ["passed"] * 4
    bad = check_correctness(
        build_program(examples[0], f"def {examples[0].entry_point}(*a):\n    return None")
    )
    assert bad.status == "failed"
    assert not bad.passed


def test_humaneval_body_only_completion_is_completed_with_the_prompt() -> None:
    example = load_examples("humaneval", split="test", limit=1)[0]
    body = example.answer[len(example.question) :]
    assert check_correctness(build_program(example, body)).passed


def test_humaneval_complete_function_gets_the_prompt_imports() -> None:
    example = load_examples("humaneval", split="test", limit=1)[0]  # uses typing.List
    assert "from typing import List" in example.question
    function = example.answer[example.answer.index("def ") :]
    assert "from typing" not in function
    assert check_correctness(build_program(example, function)).passed


def _humaneval_results(examples: list[Example]) -> tuple[list[bool], list[bool]]:
    canonical = check_many([build_program(e, e.answer) for e in examples])
    mutated = check_many(
        [build_program(e, e.answer + MUTATION.format(e=e.entry_point)) for e in examples]
    )
    return [r.passed for r in canonical], [r.passed for r in mutated]


def test_humaneval_sample_canonical_pass_mutated_fail() -> None:
    examples = load_examples("humaneval", split="test")[::16]
    canonical, mutated = _humaneval_results(examples)
    assert all(canonical)
    assert not any(mutated)


@pytest.mark.slow
def test_all_164_humaneval_canonical_solutions_pass_and_mutants_fail() -> None:
    examples = load_examples("humaneval", split="test")
    assert len(examples) == 164
    canonical, mutated = _humaneval_results(examples)
    assert [e.id for e, ok in zip(examples, canonical, strict=True) if not ok] == []
    assert [e.id for e, ok in zip(examples, mutated, strict=True) if ok] == []
