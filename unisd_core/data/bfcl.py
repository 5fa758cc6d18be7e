"""BFCL function-calling items as ToolAlpaca training Examples (the offline tool-use source).

ToolAlpaca's training split cannot be had offline (../shared/data/README.md). The Berkeley
Function Calling Leaderboard (`bfcl-eval` on PyPI, Apache-2.0) ships thousands of single-turn
function-calling questions with gold calls, which makes a disjoint training pool for the same
skill: pick the tool and fill its arguments from the request. Each item becomes a ToolAlpaca
Example: the same ReAct prompt (tool docs, Thought/Action/Action Input format), the gold calls in
ToolAlpaca's encoding, and a `metadata["train_source"]` note saying where it came from.

Files, in BFCL's own layout (`BFCL_v4_<category>.json` question files, JSON lines, and
`possible_answer/BFCL_v4_<category>.json` gold files):
- a `bfcl/` folder in the ToolAlpaca data folder (the bundled sample ships one), else
- the data folder of an installed `bfcl-eval` (`pip install --no-deps bfcl-eval`), found without
  importing the package (its own imports pull a large dependency tree).

Gold answers list every acceptable value per argument; the first one that is not the "may be
omitted" marker "" becomes the demonstration, and arguments whose only choice is omission are
left out.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unisd_core.data.io import Record, field, read_jsonl
from unisd_core.data.schema import DataError

# Single-turn categories whose items all have gold calls (irrelevance, multi-turn, memory and
# web-search categories have none, or need an environment to answer).
CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
VERSION_PREFIX = "BFCL_v4_"
INSTALL_HINT = "install the BFCL data with `pip install --no-deps bfcl-eval`"


@dataclass(frozen=True, slots=True)
class BfclItem:
    """One converted BFCL question: what the ToolAlpaca loader needs to build an Example."""

    item_id: str
    category: str
    request: str
    tools: list[str]
    documentation: str
    calls: list[dict[str, str]]


def installed_data_dir() -> Path | None:
    """The `data/` folder of an installed bfcl-eval, or None (the package is never imported)."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        data = Path(location) / "data"
        if (data / "possible_answer").is_dir():
            return data
    return None


def find_data_dir(toolalpaca_dir: Path) -> Path:
    """The folder with BFCL files: `<toolalpaca dir>/bfcl`, else the installed package's data."""
    local = toolalpaca_dir / "bfcl"
    if (local / "possible_answer").is_dir():
        return local
    installed = installed_data_dir()
    if installed is not None:
        return installed
    raise DataError(
        f"BFCL data not found in {local} and bfcl-eval is not installed; {INSTALL_HINT}"
    )


def _request(record: Record, origin: str) -> str:
    """The user's request: the messages of the single turn (system text first, when present)."""
    turns = field(record, "question", origin, list)
    if len(turns) != 1 or not isinstance(turns[0], list) or not turns[0]:
        raise DataError(f"{origin}: field 'question' should hold exactly one non-empty turn")
    parts = []
    for index, message in enumerate(turns[0]):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise DataError(f"{origin}: field 'question'[0][{index}] has no text 'content'")
        parts.append(message["content"].strip())
    return "\n".join(part for part in parts if part)


def _documentation(functions: list[Any], origin: str) -> tuple[list[str], str]:
    """Tool names and their docs as ToolAlpaca-style text (name, description, JSON parameters)."""
    names, blocks = [], []
    for index, function in enumerate(functions):
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise DataError(f"{origin}: field 'function'[{index}] has no 'name'")
        names.append(function["name"])
        parameters = json.dumps(function.get("parameters", {}), ensure_ascii=False)
        blocks.append(
            f"{function['name']}: {str(function.get('description', '')).strip()}\n"
            f"Parameters: {parameters}"
        )
    return names, "\n".join(blocks)


def _first_choice(values: Any) -> tuple[bool, Any]:
    """(present, value): the first acceptable value that is not the omission marker ""."""
    if not isinstance(values, list):
        return True, values
    for value in values:
        if value != "":
            return True, value
    return False, None


def gold_calls(ground_truth: Any, origin: str) -> list[dict[str, str]]:
    """BFCL's [{name: {arg: [choices]}}] as ToolAlpaca calls [{"Action", "Action_Input"}]."""
    if not isinstance(ground_truth, list) or not ground_truth:
        raise DataError(f"{origin}: field 'ground_truth' should be a non-empty list of calls")
    calls = []
    for index, call in enumerate(ground_truth):
        if not isinstance(call, dict) or len(call) != 1:
            raise DataError(f"{origin}: field 'ground_truth'[{index}] should map one function")
        ((name, arguments),) = call.items()
        if not isinstance(arguments, dict):
            raise DataError(f"{origin}: field 'ground_truth'[{index}] arguments are not an object")
        chosen = {}
        for key, values in arguments.items():
            present, value = _first_choice(values)
            if present:
                chosen[key] = value
        calls.append({"Action": str(name), "Action_Input": json.dumps(chosen, ensure_ascii=False)})
    return calls


def _answers(path: Path) -> dict[str, tuple[str, Any]]:
    out: dict[str, tuple[str, Any]] = {}
    for origin, record in read_jsonl(path):
        out[field(record, "id", origin)] = (origin, record.get("ground_truth"))
    return out


def read_category(data_dir: Path, category: str) -> Iterator[BfclItem]:
    """The items of one category with their gold calls; a question without an answer is an error."""
    questions = data_dir / f"{VERSION_PREFIX}{category}.json"
    answers_path = data_dir / "possible_answer" / questions.name
    if not questions.is_file():
        return
    answers = _answers(answers_path)
    for origin, record in read_jsonl(questions):
        item_id = field(record, "id", origin)
        if item_id not in answers:
            raise DataError(f"{origin}: no gold answer for id {item_id!r} in {answers_path}")
        answer_origin, ground_truth = answers[item_id]
        tools, documentation = _documentation(field(record, "function", origin, list), origin)
        yield BfclItem(
            item_id=item_id,
            category=category,
            request=_request(record, origin),
            tools=tools,
            documentation=documentation,
            calls=gold_calls(ground_truth, answer_origin),
        )


def read_items(data_dir: Path) -> list[BfclItem]:
    """Every item of the single-turn categories found in `data_dir`, in category order."""
    items = [item for category in CATEGORIES for item in read_category(data_dir, category)]
    if not items:
        raise DataError(
            f"no BFCL question files ({VERSION_PREFIX}<category>.json) in {data_dir}; "
            + INSTALL_HINT
        )
    return items
