"""Multiple-choice scoring: extract the chosen letter, compare with the gold letter.

Extraction rules, tried in order (method.md 5); within a rule the last match wins, since models
restate the final choice at the end:
1. a line that starts with `Answer: X` (markdown emphasis and brackets allowed);
2. "the answer is X" (also "the correct/final answer is");
3. `ANSWER: X` anywhere in a line;
4. a line that starts with a valid letter (`B`, `B.`, `(B)`, `B) text`, not "A dog ...");
5. the last standalone valid letter.
Only letters of the item's options count (a 4-option item never yields `E`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from unisd_core.data.options import LETTERS

_EMPH = r"[\*_`\s]*"


def _rules(valid: str) -> list[re.Pattern[str]]:
    letter = rf"[\(\[]?([{valid}])[\)\]]?"
    return [
        re.compile(rf"^{_EMPH}answer{_EMPH}[:：]{_EMPH}{letter}(?![A-Za-z])", re.I | re.M),
        re.compile(
            rf"the\s+(?:correct\s+|final\s+|best\s+)?answer\s+is{_EMPH}:?{_EMPH}{letter}"
            r"(?![A-Za-z])",
            re.I,
        ),
        re.compile(rf"answer{_EMPH}[:：]{_EMPH}{letter}(?![A-Za-z])", re.I),
        # "B", "B.", "(B) text", "**B**": punctuation or the line end after the letter, so a
        # sentence that starts with the article "A" is not read as a choice.
        re.compile(rf"^{_EMPH}{letter}[\*_`]*(?:[\.\):]|[ \t]*$)", re.M),
        re.compile(rf"(?<![A-Za-z0-9'])([{valid}])(?![A-Za-z0-9'])"),
    ]


def extract_letter(text: str, num_options: int) -> str | None:
    """The chosen option letter, or None when no rule matches."""
    valid = LETTERS[: max(1, min(num_options, len(LETTERS)))]
    for pattern in _rules(valid):
        matches = pattern.findall(text)
        if matches:
            return str(matches[-1]).upper()
    return None


def score(text: str, gold: str, num_options: int) -> tuple[str | None, float]:
    """(extracted letter, 1.0 if it equals the gold letter else 0.0)."""
    letter = extract_letter(text, num_options)
    return letter, float(letter is not None and letter == gold)


def accuracy(scores: Sequence[float]) -> float:
    """Correct / N; a failed extraction counts as wrong."""
    return sum(scores) / len(scores) if scores else 0.0
