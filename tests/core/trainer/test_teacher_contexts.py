"""Teacher contexts: donors, retrieval, negatives (deterministic, code mutation)."""

from __future__ import annotations

import ast
import random

import numpy as np
import pytest

from unisd_core.data import load_examples
from unisd_core.data.schema import Example
from unisd_core.teachers import contexts, retrieval
from unisd_core.teachers.negatives import deterministic_negative, mutate_code


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return load_examples("scienceqa", source="bundled", split="train", seed=42)


def test_random_donors_are_distinct_others_and_seeded(examples: list[Example]) -> None:
    plan = contexts.plan_auxiliary(examples, source="random", k=3, seed=1)
    again = contexts.plan_auxiliary(examples, source="random", k=3, seed=1)
    assert plan.donors == again.donors
    for i, donors in enumerate(plan.donors):
        assert len(set(donors)) == 3
        assert i not in donors
    assert plan.backend == "random"


def test_retrieval_prefers_similar_text_and_records_backend() -> None:
    texts = ["photosynthesis in green plants", "plants use photosynthesis", "the stock market"]
    vectors, backend = retrieval.embed(texts)
    assert backend in ("tfidf", "sentence-transformers")
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert retrieval.nearest_neighbours(vectors, 1) == [[1], [0], [0]] or backend != "tfidf"


def test_retrieval_plan_messages_never_contain_the_example_itself(examples: list[Example]) -> None:
    plan = contexts.plan_auxiliary(examples, source="retrieval", k=2, seed=0)
    messages = plan.messages(examples, 0)
    assert len(messages) == 2
    assert all(examples[0].id not in m[-1]["content"] for m in messages)


def test_too_few_examples_for_k_is_a_clear_error(examples: list[Example]) -> None:
    with pytest.raises(ValueError, match="num_auxiliary_contexts"):
        contexts.plan_auxiliary(examples[:3], source="random", k=3, seed=0)


def test_induction_uses_the_given_inducer(examples: list[Example]) -> None:
    seen: list[int] = []

    def induce(requests: list[list[dict[str, str]]]) -> list[str]:
        seen.append(len(requests))
        return [f"instruction {i}" for i in range(len(requests))]

    plan = contexts.plan_auxiliary(examples, source="induction", k=3, seed=0, induce=induce)
    assert seen == [len(examples) // contexts.NUM_INDUCTION_DEMOS]
    assert all(len(p) == 3 for p in plan.picks)
    assert "instruction" in plan.messages(examples, 0)[0][-1]["content"]


def test_mcqa_negative_is_a_wrong_option_and_deterministic(examples: list[Example]) -> None:
    for ex in examples[:10]:
        neg = deterministic_negative(ex, seed=3)
        assert neg.answer != ex.answer
        assert neg == deterministic_negative(ex, seed=3)
        text = contexts.negative_messages(ex, neg)[-1]["content"]
        assert f"Answer: {neg.answer}" in text


def test_code_mutation_changes_behaviour() -> None:
    source = "def is_small(x):\n    return x < 10\n"
    mutated = mutate_code(source, random.Random(0))
    assert mutated is not None
    code, _ = mutated
    assert code != ast.unparse(ast.parse(source))
    namespace: dict[str, object] = {}
    exec(compile(code, "<mutant>", "exec"), namespace)
    fn = namespace["is_small"]
    assert callable(fn)
    assert [fn(x) for x in (5, 10, 15)] != [True, False, False]
    assert mutate_code("def broken(:", random.Random(0)) is None
