"""Teacher contexts: what the (same) teacher network is shown besides the task.

* gold: the task, the gold demonstration, and an instruction to study it (primary teacher);
* auxiliary (agreement, method.md 3.1): K contexts without this example's answer, from
  `random` or `retrieval` donors (another solved training example above the task) or
  `induction` (a generic instruction the base model induced from a few solved examples);
* negative (contrastive, 3.3): the gold layout with a plausible wrong answer as demonstration.

Prompt wording lives in `unisd_core.data.prompts`; this module decides which donors,
instructions and negatives each example gets.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from unisd_core.data import prompts
from unisd_core.data.prompts import (
    auxiliary_messages,
    induced_instruction_messages,
    induction_request_messages,
    teacher_messages,
)
from unisd_core.data.schema import Example
from unisd_core.teachers import retrieval
from unisd_core.teachers.negatives import Negative

Messages = list[dict[str, str]]

NUM_INDUCTION_DEMOS = 3
MAX_INDUCED_INSTRUCTIONS = 100

__all__ = [
    "AuxiliaryPlan",
    "negative_messages",
    "plan_auxiliary",
    "retrieval_text",
    "teacher_messages",
]


def negative_messages(example: Example, negative: Negative) -> Messages:
    return prompts.negative_messages(example, negative.answer, negative.rationale)


def retrieval_text(example: Example) -> str:
    """What retrieval embeds: the question (MCQA) or the whole task (code, tool use)."""
    return example.question if example.task == "mcqa" else prompts.student_prompt_text(example)


@dataclass
class AuxiliaryPlan:
    """Which K auxiliary contexts each training example gets; fixed for the whole run."""

    source: str
    backend: str  # random | tfidf | sentence-transformers | induction
    donors: list[list[int]] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    picks: list[list[int]] = field(default_factory=list)

    def messages(self, examples: Sequence[Example], index: int) -> list[Messages]:
        example = examples[index]
        if self.source == "induction":
            return [
                induced_instruction_messages(example, self.instructions[j])
                for j in self.picks[index]
            ]
        return [auxiliary_messages(example, examples[j]) for j in self.donors[index]]


def plan_auxiliary(
    examples: Sequence[Example],
    *,
    source: str,
    k: int,
    seed: int,
    induce: Callable[[list[Messages]], list[str]] | None = None,
) -> AuxiliaryPlan:
    """Pick donors (random, retrieval) or induce instructions (induction) once per run."""
    n = len(examples)
    if source in ("random", "retrieval") and n <= k:
        raise ValueError(
            f"agreement.num_auxiliary_contexts={k} needs more than {k} training examples, got {n}"
        )
    if source == "random":
        rng = random.Random(seed)
        donors = [rng.sample([j for j in range(n) if j != i], k) for i in range(n)]
        return AuxiliaryPlan(source=source, backend="random", donors=donors)
    if source == "retrieval":
        vectors, backend = retrieval.embed([retrieval_text(ex) for ex in examples])
        return AuxiliaryPlan(
            source=source, backend=backend, donors=retrieval.nearest_neighbours(vectors, k)
        )
    if source == "induction":
        if induce is None:
            raise ValueError("induction contexts need a model to induce instructions with")
        rng = random.Random(seed)
        order = list(range(n))
        rng.shuffle(order)
        groups = max(1, min(n // NUM_INDUCTION_DEMOS, MAX_INDUCED_INSTRUCTIONS))
        requests = [
            induction_request_messages(
                [
                    examples[j]
                    for j in order[g * NUM_INDUCTION_DEMOS : (g + 1) * NUM_INDUCTION_DEMOS]
                ]
            )
            for g in range(groups)
        ]
        instructions = [
            text.strip() or "Answer carefully and concisely." for text in induce(requests)
        ]
        picks = [[rng.randrange(len(instructions)) for _ in range(k)] for _ in range(n)]
        return AuxiliaryPlan(
            source=source, backend="induction", instructions=instructions, picks=picks
        )
    raise ValueError(f"unknown agreement.context_source {source!r}")
