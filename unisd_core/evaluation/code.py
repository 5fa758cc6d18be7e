"""Code tasks: extract the program from a completion, build the test program, run it sandboxed.

Extraction order (method.md 5): a JSON object's `code` field, the first ```python block, the
first fenced block of any language, then the raw text. pass@1 with greedy decoding is the mean of
per-item pass/fail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from unisd_core.data.schema import Example
from unisd_core.evaluation.sandbox import CodeResult, run_program

__all__ = ["CodeResult", "build_program", "check_correctness", "check_many", "extract_code"]

_FENCE = re.compile(r"```([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def _json_code(text: str) -> str | None:
    candidates = [text.strip()]
    candidates += [body for lang, body in _FENCE.findall(text) if lang.lower() == "json"]
    for candidate in candidates:
        if not candidate.startswith("{"):
            continue
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and isinstance(data.get("code"), str):
            return str(data["code"])
    return None


def extract_code(text: str) -> str:
    """The program in a model's reply (see the module docstring for the order of the rules)."""
    from_json = _json_code(text)
    if from_json is not None:
        return from_json
    blocks = _FENCE.findall(text)
    for lang, body in blocks:
        if lang.lower() in ("python", "py", "python3"):
            return str(body)
    if blocks:
        return str(blocks[0][1])
    return text


def build_program(example: Example, code: str) -> str:
    """The script whose exit status decides pass/fail for `code` on `example`."""
    if example.benchmark == "humaneval" or (example.tests and "def check(" in example.tests[0]):
        entry = example.entry_point or ""
        if not re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE):
            # The model returned only a body: complete the given prompt with it.
            code = example.question + code
        else:
            # A complete function often drops the prompt's imports (`from typing import List`);
            # repeating them is harmless and keeps the score about the function itself.
            imports = [
                line
                for line in example.question.splitlines()
                if line.startswith(("import ", "from "))
            ]
            code = "\n".join([*imports, code])
        return f"{code}\n\n{example.tests[0]}"
    # Setup after the code: MBPP's setup code may use the solution's classes (e.g. a Node type),
    # and the sanitized set's imports only need to precede the asserts.
    parts = [code, example.test_setup, "\n".join(example.tests)]
    return "\n\n".join(part for part in parts if part) + "\n"


def check_correctness(program: str, *, timeout_s: float = 10.0) -> CodeResult:
    """Run `program` in the sandbox: `.passed` is True when it exits with status 0."""
    return run_program(program, timeout_s=timeout_s)


def check_many(
    programs: Sequence[str], *, timeout_s: float = 10.0, workers: int = 2
) -> list[CodeResult]:
    """Sandbox several programs concurrently (each is its own process); results in input order."""
    if workers <= 1:
        return [check_correctness(p, timeout_s=timeout_s) for p in programs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: check_correctness(p, timeout_s=timeout_s), programs))
