"""ToolAlpaca scoring: parse predicted calls, compare with the gold calls (method.md 5).

Parsing: a JSON object `{"tool_calls": [{"Action", "Action_Input"}]}` (bare or fenced), else the
ReAct lines `Action: name` / `Action Input: {...}`.
Metrics per item:
- action accuracy: 1 when the number of calls matches and every action name matches in order;
- argument accuracy: 0 when the call counts differ, else the mean over steps of the fraction of
  the gold call's non-empty key/values that the prediction matches exactly (as strings);
- full accuracy: 1 when both are 1.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

Call = dict[str, Any]

_ACTION = re.compile(r"^\s*Action\s*:\s*(.+?)\s*$", re.M)
_STOP = re.compile(r"^\s*(?:Thought|Action|Observation|Final Answer)\s*:", re.M)


@dataclass(frozen=True)
class ToolScore:
    action: float
    argument: float
    full: float


def _args(raw: Any) -> dict[str, Any]:
    """Arguments as a dict; JSON strings are decoded, anything unparsable is empty."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        try:
            value = json.loads(text) if text else {}
        except json.JSONDecodeError:
            match = re.search(r"\{.*\}", text, re.S)
            try:
                value = json.loads(match.group(0)) if match else {}
            except json.JSONDecodeError:
                value = {}
        return value if isinstance(value, dict) else {}
    return {}


def _json_calls(text: str) -> list[Call] | None:
    candidates = [text.strip()]
    candidates += re.findall(r"```(?:json)?[^\n]*\n(.*?)```", text, re.S)
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        candidates.append(text[first : last + 1])
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
            return [
                {"Action": str(c.get("Action", "")), "Action_Input": _args(c.get("Action_Input"))}
                for c in data["tool_calls"]
                if isinstance(c, dict)
            ]
    return None


def parse_calls(text: str) -> list[Call]:
    """Predicted calls, in order, each as {"Action": name, "Action_Input": dict}."""
    from_json = _json_calls(text)
    if from_json is not None:
        return from_json
    calls: list[Call] = []
    for match in _ACTION.finditer(text):
        rest = text[match.end() :]
        args_match = re.match(r"\s*Action\s+Input\s*:\s*", rest)
        args_text = ""
        if args_match:
            body = rest[args_match.end() :]
            stop = _STOP.search(body)
            args_text = body[: stop.start()] if stop else body
        calls.append(
            {"Action": match.group(1).strip().strip("`"), "Action_Input": _args(args_text)}
        )
    return calls


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def score_calls(predicted: list[Call], gold: list[Call]) -> ToolScore:
    if len(predicted) != len(gold):
        return ToolScore(0.0, 0.0, 0.0)
    action = float(all(p["Action"] == g["Action"] for p, g in zip(predicted, gold, strict=True)))
    step_scores = []
    for pred, ref in zip(predicted, gold, strict=True):
        pred_args, gold_args = _args(pred["Action_Input"]), _args(ref["Action_Input"])
        wanted = {k: v for k, v in gold_args.items() if v not in ("", None, [], {})}
        if not wanted:
            step_scores.append(1.0)
            continue
        hits = sum(
            k in pred_args and _as_text(pred_args[k]) == _as_text(v) for k, v in wanted.items()
        )
        step_scores.append(hits / len(wanted))
    argument = sum(step_scores) / len(step_scores) if step_scores else 1.0
    return ToolScore(action, argument, float(action == 1.0 and argument == 1.0))


def score(text: str, gold_json: str) -> tuple[list[Call], ToolScore]:
    gold = [
        {"Action": c["Action"], "Action_Input": c.get("Action_Input", "{}")}
        for c in json.loads(gold_json)
    ]
    predicted = parse_calls(text)
    return predicted, score_calls(predicted, gold)
