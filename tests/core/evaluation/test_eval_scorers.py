from __future__ import annotations

import json

import pytest

from unisd_core.evaluation import mcqa, numeric, tooluse


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("Reasoning: blah.\nAnswer: C", 4, "C"),
        ("**Answer:** (B)", 4, "B"),
        ("Answer: A\nWait, reconsider.\nAnswer: D", 4, "D"),  # the last statement wins
        ("I think the answer is B because A is wrong.", 4, "B"),
        ("The correct answer is: (D).", 4, "D"),
        ("Final ANSWER: c", 4, "C"),
        ("Option analysis...\nB) is correct here", 4, "B"),
        ("(C)", 3, "C"),
        ("A dog is not a cat, so D", 4, "D"),  # rule 5: the last standalone letter
        ("Answer: E", 4, None),  # E is not an option of a 4-option item
        ("Answer: Paris", 4, None),  # a word, not a letter; and no standalone letter
        ("answer: b", 2, "B"),
        ("", 4, None),
        ("It is AB or BC", 4, None),  # letters inside words never count
    ],
)
def test_letter_extraction(text: str, n: int, expected: str | None) -> None:
    assert mcqa.extract_letter(text, n) == expected


def test_mcqa_rule_order_prefers_answer_lines_over_later_letters() -> None:
    text = "Answer: B\n\nNote: option A mentions C."
    assert mcqa.extract_letter(text, 4) == "B"
    assert mcqa.score(text, "B", 4) == ("B", 1.0)
    assert mcqa.score("no idea", "B", 4) == (None, 0.0)
    assert mcqa.accuracy([1.0, 0.0, 1.0, 0.0]) == 0.5
    assert mcqa.accuracy([]) == 0.0


@pytest.mark.parametrize(
    ("text", "gold", "value"),
    [
        ("She earns 9 * 2 = 18 dollars.\nAnswer: 18", "18", 1.0),
        ("#### 1,234", "1234", 1.0),
        ("The answer is $5.00.", "5", 1.0),
        ("So x = \\boxed{42}", "42", 1.0),
        ("Answer: -3", "-3", 1.0),
        ("First 3, then 7, finally 12", "12", 1.0),
        ("Answer: 17", "18", 0.0),
        ("no number here", "18", 0.0),
        ("Answer: 0.5", ".5", 1.0),
    ],
)
def test_numeric_scores(text: str, gold: str, value: float) -> None:
    assert numeric.score(text, gold)[1] == value


GOLD = json.dumps(
    [
        {"Action": "search", "Action_Input": '{"q": "cats", "limit": 5, "empty": ""}'},
        {"Action": "get", "Action_Input": '{"id": "7"}'},
    ]
)


def test_tooluse_react_parsing_and_scores() -> None:
    text = (
        'Thought: search first\nAction: search\nAction Input: {"q": "cats", "limit": 5}\n'
        'Observation: ...\nThought: then fetch\nAction: get\nAction Input: {"id": "7"}\n'
    )
    calls, result = tooluse.score(text, GOLD)
    assert [c["Action"] for c in calls] == ["search", "get"]
    assert result == tooluse.ToolScore(1.0, 1.0, 1.0)


def test_tooluse_partial_arguments_and_wrong_counts() -> None:
    text = 'Action: search\nAction Input: {"q": "dogs", "limit": 5}\nAction: get\nAction Input: {}'
    _, result = tooluse.score(text, GOLD)
    assert result.action == 1.0
    assert result.argument == pytest.approx((1 / 2 + 0) / 2)  # "empty" is not a gold value
    assert result.full == 0.0
    _, one_call = tooluse.score('Action: search\nAction Input: {"q": "cats"}', GOLD)
    assert one_call == tooluse.ToolScore(0.0, 0.0, 0.0)
    _, wrong_order = tooluse.score("Action: get\nAction Input: {}\nAction: search\n", GOLD)
    assert wrong_order.action == 0.0


def test_tooluse_json_format_and_garbage() -> None:
    payload = {
        "tool_calls": [
            {"Action": "search", "Action_Input": {"q": "cats", "limit": 5}},
            {"Action": "get", "Action_Input": '{"id": "7"}'},
        ]
    }
    _, result = tooluse.score(f"```json\n{json.dumps(payload)}\n```", GOLD)
    assert result.full == 1.0
    calls, garbage = tooluse.score("Action: search\nAction Input: {not json", GOLD)
    assert calls[0]["Action_Input"] == {}
    assert garbage.full == 0.0
    assert tooluse.parse_calls("") == []


def test_tooluse_values_are_compared_as_strings() -> None:
    gold = json.dumps([{"Action": "a", "Action_Input": '{"n": 5, "tags": ["x"]}'}])
    assert tooluse.score('Action: a\nAction Input: {"n": 5, "tags": ["x"]}', gold)[1].full == 1.0
    assert tooluse.score('Action: a\nAction Input: {"n": "5", "tags": ["x"]}', gold)[1].full == 1.0
    assert (
        tooluse.score('Action: a\nAction Input: {"n": 6, "tags": ["x"]}', gold)[1].argument == 0.5
    )
