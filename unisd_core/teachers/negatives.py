"""Wrong answers for the contrastive (negative) teacher context (method.md 0.7 and 3.3).

Deterministic by default, so CPU runs need no generation budget: for multiple choice a wrong
option with a short rationale for it; for code an AST mutation of the reference solution
(flipped comparison, swapped arithmetic operator, off-by-one constant or a wrong return value).
`generated` asks the base model for the rationale instead (the paper's way); the trainer caches
those per (dataset, model, seed).
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass

from unisd_core.data.schema import Example

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Negative:
    """A plausible but wrong answer and the argument given for it."""

    answer: str
    rationale: str


def wrong_letter(example: Example, rng: random.Random) -> str:
    letters = [LETTERS[i] for i in range(len(example.options)) if LETTERS[i] != example.answer]
    if not letters:
        raise ValueError(f"{example.id}: no wrong option to build a negative from")
    return rng.choice(letters)


def mcqa_negative(example: Example, rng: random.Random) -> Negative:
    letter = wrong_letter(example, rng)
    option = example.options[LETTERS.index(letter)]
    rationale = (
        f"The question asks which choice fits best, and '{option}' matches its wording most "
        f"directly, so the other options can be ruled out."
    )
    return Negative(answer=letter, rationale=rationale)


_COMPARE_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
}
_BINOP_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Add,
    ast.FloorDiv: ast.Mult,
}


class _FirstMutation(ast.NodeTransformer):
    """Applies exactly one mutation of the requested kind, at its first opportunity."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.done = False

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if not self.done and self.kind == "compare" and type(node.ops[0]) in _COMPARE_SWAP:
            node.ops[0] = _COMPARE_SWAP[type(node.ops[0])]()
            self.done = True
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not self.done and self.kind == "binop" and type(node.op) in _BINOP_SWAP:
            node.op = _BINOP_SWAP[type(node.op)]()
            self.done = True
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if not self.done and self.kind == "constant" and type(value) is int:
            self.done = True
            return ast.copy_location(ast.Constant(value + 1), node)
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        self.generic_visit(node)
        if not self.done and self.kind == "return" and node.value is not None:
            self.done = True
            return ast.copy_location(ast.Return(ast.Constant(None)), node)
        return node


MUTATION_KINDS = ("compare", "binop", "constant", "return")


def mutate_code(source: str, rng: random.Random) -> tuple[str, str] | None:
    """A subtly wrong version of `source` and a description of the bug, or None if unparsable."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    kinds = list(MUTATION_KINDS)
    rng.shuffle(kinds)
    for kind in kinds:
        mutated = _FirstMutation(kind).visit(ast.parse(source))
        if isinstance(mutated, ast.Module):
            text = ast.unparse(ast.fix_missing_locations(mutated))
            if text != ast.unparse(tree):
                return text, f"a {kind} mutation of the reference solution"
    return None


def code_negative(example: Example, rng: random.Random) -> Negative:
    mutated = mutate_code(example.answer, rng)
    if mutated is None:
        return Negative(answer="pass", rationale="")
    code, _ = mutated
    return Negative(answer=code, rationale="")  # no rationale: it would point at the bug


def deterministic_negative(example: Example, seed: int) -> Negative:
    """The default negative of an example: a function of (example id, seed) only."""
    rng = random.Random(f"{seed}:{example.id}")
    if example.task == "code":
        return code_negative(example, rng)
    if example.options:
        return mcqa_negative(example, rng)
    return Negative(answer="I am not sure.", rationale="The question cannot be answered.")


def rationale_request_messages(example: Example, wrong: str) -> list[dict[str, str]]:
    """Ask the base model to argue for a wrong option (the `generated` negatives source)."""
    options = "\n".join(f"{LETTERS[i]}. {opt}" for i, opt in enumerate(example.options))
    content = (
        f"{example.question}\n\n{options}\n\nWrite two to four convincing sentences arguing that "
        f"option {wrong} is the answer. Do not mention any other option as correct."
    )
    return [{"role": "user", "content": content}]
