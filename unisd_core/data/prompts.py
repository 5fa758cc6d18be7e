"""Chat messages for every context the method uses (method.md 1, 3.1, 3.3 and 5).

All builders return plain-text chat message lists (one user turn); the model's tokenizer applies
its chat template. The student prompt of each task type is the building block: the teacher, the
auxiliary and the negative contexts all end with the unchanged task, so the completion the
student sampled reads as an answer to the same question under every context.

Builders:
- `student_messages(ex)`: the task alone.
- `teacher_messages(ex)`: the task, the gold demonstration after `DEMO_MARKER`, then
  `SELF_DISTILLATION_INSTRUCTION`.
- `auxiliary_messages(ex, donor)`: another item's solved example above the task (the random and
  retrieval contexts share this layout; only donor selection differs).
- `induced_instruction_messages(ex, instruction)`: a model-induced generic instruction above it.
- `negative_messages(ex, wrong_answer, rationale)`: the teacher layout with a wrong demonstration.
- `gold_completion(ex)`: the demonstration text (also the SFT target and the gold-PPL completion).
- `induction_request_messages(demos)`: asks the model for a generic instruction (induction).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from unisd_core.data.options import LETTERS
from unisd_core.data.schema import Example

Message = dict[str, str]

MCQA_INSTRUCTION = (
    "Think step by step in at most three short sentences, then finish with a line of the form "
    "'Answer: <letter>'."
)
MATH_INSTRUCTION = (
    "Solve the problem step by step, then finish with a line of the form 'Answer: <number>'."
)
CODE_NOTES = (
    "Notes:\n"
    "- Reply with Python code only, inside one ```python code block.\n"
    "- Include every import the code needs.\n"
    "- The function name and arguments must match the tests."
)
HUMANEVAL_NOTES = (
    "Write the complete function (signature, docstring optional, and body) inside one ```python "
    "code block. Include every import it needs."
)
DEMO_MARKER = "Here is an example of a correct response to this question:"
SELF_DISTILLATION_INSTRUCTION = (
    "Read the example response carefully, then answer the question above yourself, in your own "
    "words and with your own approach."
)
TOOLUSE_TEACHER_NOTE = "Start your reply with a 'Thought:' line before each Action."
AUX_HEADER = (
    "Below is a solved example from a different task. It is only a reference for the expected "
    "style and format: do not answer it and do not copy it."
)
AUX_SEPARATOR = "Task to solve (answer only this task):"
INDUCED_HEADER = "General instruction for your answer:"


def _user(content: str) -> list[Message]:
    return [{"role": "user", "content": content}]


def student_prompt_text(ex: Example) -> str:
    """The task as the student sees it (the text of `student_messages`)."""
    if ex.task == "mcqa":
        parts = [ex.question]
        if ex.context:
            parts.append(f"Context: {ex.context}")
        parts.append("\n".join(f"{LETTERS[i]}. {opt}" for i, opt in enumerate(ex.options)))
        parts.append(MCQA_INSTRUCTION)
        return "\n\n".join(parts)
    if ex.task == "code" and ex.benchmark == "humaneval":
        return f"Complete the following Python function.\n\n```python\n{ex.question}```\n\n" + (
            HUMANEVAL_NOTES
        )
    if ex.task == "code":
        signature = ex.metadata.get("signature") or f"def {ex.entry_point}(...)"
        tests = "\n".join(ex.tests)
        return (
            f"{ex.question}\n\nRequired function signature: {signature}\n\n"
            f"Your code should pass these tests:\n{tests}\n\n{CODE_NOTES}\n\n"
            f"Answer skeleton:\n```python\n{signature}:\n    ...\n```"
        )
    if ex.task == "math":
        return f"{ex.question}\n\n{MATH_INSTRUCTION}"
    return ex.question  # tool use: the dataset's own ReAct prompt


def student_messages(ex: Example) -> list[Message]:
    """The student sees only the task: question, context, options, tests or tool docs."""
    return _user(student_prompt_text(ex))


def demonstration(ex: Example, answer: str, rationale: str) -> str:
    """A response to `ex` in the format the student is asked for, with the given answer."""
    if ex.task == "mcqa":
        return f"Reasoning: {rationale}\nAnswer: {answer}" if rationale else f"Answer: {answer}"
    if ex.task == "math":
        return f"{rationale}\nAnswer: {answer}" if rationale else f"Answer: {answer}"
    if ex.task == "code":
        code = f"```python\n{answer.rstrip()}\n```"
        return f"{rationale}\n{code}" if rationale else code
    return tool_calls_text(answer, thought=rationale)


def tool_calls_text(calls_json: str, *, thought: str = "") -> str:
    """ReAct lines for a JSON list of calls; a string that is not such a list is kept as is."""
    try:
        calls = json.loads(calls_json)
    except json.JSONDecodeError:
        return f"Thought: {thought}\n{calls_json}" if thought else calls_json
    if not isinstance(calls, list):
        return calls_json
    lines = [f"Thought: {thought}"] if thought else []
    for call in calls:
        if isinstance(call, dict):
            lines.append(f"Action: {call.get('Action', '')}")
            lines.append(f"Action Input: {call.get('Action_Input', '{}')}")
    return "\n".join(lines)


def gold_completion(ex: Example) -> str:
    """The gold demonstration: what SFT imitates, the teacher is shown, gold PPL scores."""
    if ex.task == "tooluse" and ex.explanation:
        return ex.explanation  # the dataset's golden ReAct response, when it has one
    rationale = "" if ex.task in ("code", "tooluse") else ex.explanation
    return demonstration(ex, ex.answer, rationale)


def _with_demo(ex: Example, demo: str) -> list[Message]:
    closing = SELF_DISTILLATION_INSTRUCTION
    if ex.task == "tooluse":
        closing = f"{closing} {TOOLUSE_TEACHER_NOTE}"
    return _user(f"{student_prompt_text(ex)}\n\n{DEMO_MARKER}\n{demo}\n\n{closing}")


def teacher_messages(ex: Example) -> list[Message]:
    """Primary (gold-context) teacher: the task, the gold demonstration, then the instruction."""
    return _with_demo(ex, gold_completion(ex))


def negative_messages(ex: Example, wrong_answer: str, rationale: str) -> list[Message]:
    """Bad-teacher context: the teacher layout with a plausible but wrong demonstration.

    `wrong_answer` is a letter (MCQA), code (code), a number (math) or a JSON list of calls /
    ReAct text (tool use); `rationale` argues for it.
    """
    return _with_demo(ex, demonstration(ex, wrong_answer, rationale))


def donor_text(donor: Example) -> str:
    """A donor's solved example. Tool use keeps the request and response only (no API docs)."""
    if donor.task == "tooluse":
        request = donor.metadata.get("instruction") or donor.question
        return f"Request: {request}\nResponse:\n{gold_completion(donor)}"
    return f"{student_prompt_text(donor)}\n\nSolution:\n{gold_completion(donor)}"


def auxiliary_messages(ex: Example, donor: Example | Sequence[Example]) -> list[Message]:
    """Auxiliary context for the agreement teachers: solved donor example(s) above the task.

    It never contains `ex`'s own answer. Random and retrieval contexts share this layout; the
    donors (chosen in unisd_core.teachers) are what differs. Several donors are stacked in order.
    """
    donors = [donor] if isinstance(donor, Example) else list(donor)
    if any(d.id == ex.id for d in donors):
        raise ValueError(f"an auxiliary context for {ex.id} must not use the item itself")
    blocks = "\n\n---\n\n".join(donor_text(d) for d in donors)
    return _user(f"{AUX_HEADER}\n\n{blocks}\n\n{AUX_SEPARATOR}\n{student_prompt_text(ex)}")


def induced_instruction_messages(ex: Example, instruction: str) -> list[Message]:
    """Induction context: a generic instruction, the task, then the self-distillation note."""
    return _user(
        f"{INDUCED_HEADER}\n{instruction.strip()}\n\n{student_prompt_text(ex)}\n\n"
        f"{SELF_DISTILLATION_INSTRUCTION}"
    )


def induction_request_messages(demos: Sequence[Example]) -> list[Message]:
    """Ask the model for one generic 3-4 sentence instruction that fits tasks like `demos`."""
    blocks = "\n\n---\n\n".join(donor_text(d) for d in demos)
    return _user(
        "Here are solved examples of one kind of task.\n\n"
        f"{blocks}\n\n"
        "Write one general instruction, 3 to 4 sentences long, that would help someone solve new "
        "tasks of this kind well. Do not mention details of these particular examples. Reply "
        "with the instruction only."
    )
