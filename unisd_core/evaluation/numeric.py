"""Math (GSM8K): extract the final number and compare numerically.

Extraction order: the last `Answer: <number>` line, the last `#### <number>`, "the answer is
<number>", the last `\\boxed{...}`, then the last number anywhere in the text.
"""

from __future__ import annotations

import re

_NUMBER = r"-?\$?\s*\d[\d,]*(?:\.\d+)?|-?\$?\s*\.\d+"
_RULES = [
    re.compile(rf"answer\s*[:：]\s*\**\s*({_NUMBER})", re.I),
    re.compile(rf"####\s*({_NUMBER})"),
    re.compile(rf"answer\s+is\s*:?\s*\**\s*({_NUMBER})", re.I),
    re.compile(rf"\\boxed\{{\s*({_NUMBER})"),
    re.compile(rf"({_NUMBER})"),
]


def normalise_number(text: str) -> float | None:
    cleaned = text.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        return float(cleaned)
    except ValueError:
        return None


def extract_number(text: str) -> str | None:
    for pattern in _RULES:
        matches = pattern.findall(text)
        if matches:
            value = normalise_number(matches[-1])
            if value is not None:
                return f"{value:g}" if value != int(value) else str(int(value))
    return None


def score(text: str, gold: str) -> tuple[str | None, float]:
    predicted = extract_number(text)
    gold_value = normalise_number(gold)
    if predicted is None or gold_value is None:
        return predicted, 0.0
    return predicted, float(abs(float(predicted) - gold_value) <= 1e-6 * max(1.0, abs(gold_value)))
