"""BFCL as ToolAlpaca's offline training pool: conversion, sources and error messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from unisd_core.data import BUNDLED_DIR, DataError, load_examples
from unisd_core.data import bfcl as bfcl_data
from unisd_core.data.toolalpaca import BFCL_NOTE, PROMPT_FORMAT
from unisd_core.evaluation import tooluse

BUNDLED_BFCL = BUNDLED_DIR / "toolalpaca" / "bfcl"
# Items per category in the bundled sample (the first lines of each upstream file).
BUNDLED_SAMPLE = {
    "simple_python": 12,
    "multiple": 8,
    "parallel": 4,
    "live_simple": 8,
    "live_multiple": 8,
}
installed = pytest.mark.skipif(
    bfcl_data.installed_data_dir() is None, reason="bfcl-eval is not installed (make setup does)"
)


def test_bundled_sample_loads_as_toolalpaca_training_examples() -> None:
    examples = load_examples("toolalpaca", split="bfcl")
    assert len(examples) == sum(BUNDLED_SAMPLE.values())
    assert len({e.id for e in examples}) == len(examples)
    by_category = [e.metadata["api"].removeprefix("bfcl-") for e in examples]
    assert {c: by_category.count(c) for c in BUNDLED_SAMPLE} == BUNDLED_SAMPLE
    for example in examples:
        assert example.task == "tooluse"
        assert example.metadata["train_source"] == BFCL_NOTE
        assert PROMPT_FORMAT in example.question
        assert example.question.endswith(f"Question: {example.metadata['instruction']}")
        for call in json.loads(example.answer):
            # Every gold action is one of the tools documented in the prompt.
            assert f"{call['Action']}: " in example.question
            assert isinstance(json.loads(call["Action_Input"]), dict)


def test_first_acceptable_value_is_the_demonstration_and_omissions_are_dropped() -> None:
    first = load_examples("toolalpaca", split="bfcl")[0]
    assert first.id == "toolalpaca-bfcl-simple_python_0"
    # Upstream gold: base [10], height [5], unit ["units", ""] (the "" marks "may be omitted").
    assert json.loads(first.answer) == [
        {
            "Action": "calculate_triangle_area",
            "Action_Input": '{"base": 10, "height": 5, "unit": "units"}',
        }
    ]
    calls = bfcl_data.gold_calls([{"f": {"a": ["", 3], "b": [""], "c": [[1, 2]]}}], "x")
    assert json.loads(calls[0]["Action_Input"]) == {"a": 3, "c": [1, 2]}


def test_the_gold_demonstration_scores_full_marks() -> None:
    for example in load_examples("toolalpaca", split="bfcl"):
        demo = "\n".join(
            f"Action: {c['Action']}\nAction Input: {c['Action_Input']}"
            for c in json.loads(example.answer)
        )
        _, score = tooluse.score(demo, example.answer)
        assert score.full == 1.0, example.id


def _copy_sample(tmp_path: Path) -> Path:
    folder = tmp_path / "toolalpaca"
    shutil.copytree(BUNDLED_BFCL, folder / "bfcl")
    return folder


def test_local_folder_with_a_bfcl_subfolder_is_used(tmp_path: Path) -> None:
    folder = _copy_sample(tmp_path)
    for category in ("multiple", "parallel", "live_simple", "live_multiple"):
        (folder / "bfcl" / f"BFCL_v4_{category}.json").unlink()
    examples = load_examples("toolalpaca", source=f"local:{tmp_path}", split="bfcl")
    assert len(examples) == BUNDLED_SAMPLE["simple_python"]


def test_a_question_without_a_gold_answer_names_the_file_and_id(tmp_path: Path) -> None:
    folder = _copy_sample(tmp_path)
    answers = folder / "bfcl" / "possible_answer" / "BFCL_v4_multiple.json"
    lines = answers.read_text().splitlines()
    answers.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(
        DataError, match=r"BFCL_v4_multiple\.json:1: no gold answer for id 'multiple_0'"
    ):
        load_examples("toolalpaca", source=f"local:{tmp_path}", split="bfcl")


def test_a_malformed_gold_answer_names_its_line_and_field(tmp_path: Path) -> None:
    folder = _copy_sample(tmp_path)
    answers = folder / "bfcl" / "possible_answer" / "BFCL_v4_parallel.json"
    lines = answers.read_text().splitlines()
    lines[2] = json.dumps({"id": json.loads(lines[2])["id"], "ground_truth": "nope"})
    answers.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"BFCL_v4_parallel\.json:3: field 'ground_truth'"):
        load_examples("toolalpaca", source=f"local:{tmp_path}", split="bfcl")


def test_missing_data_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "toolalpaca").mkdir()
    monkeypatch.setattr(bfcl_data, "installed_data_dir", lambda: None)
    with pytest.raises(DataError, match="pip install --no-deps bfcl-eval"):
        load_examples("toolalpaca", source=f"local:{tmp_path}", split="bfcl")


@installed
def test_installed_package_gives_the_full_pool_with_unique_ids(tmp_path: Path) -> None:
    (tmp_path / "toolalpaca").mkdir()  # no bfcl/ subfolder: the installed package is used
    examples = load_examples("toolalpaca", source=f"local:{tmp_path}", split="bfcl")
    assert len(examples) > 2000
    assert len({e.id for e in examples}) == len(examples)
    sample = {e.id: e for e in load_examples("toolalpaca", split="bfcl")}
    full = {e.id: e for e in examples}
    # The bundled sample is a verbatim subset of the upstream files.
    assert all(full[item_id] == example for item_id, example in sample.items())


def test_tool_use_trains_on_bfcl_and_evaluates_on_toolalpaca(tmp_path: Path) -> None:
    import torch

    from unisd_core.callbacks import ListSink
    from unisd_core.config import RunConfig
    from unisd_core.pipeline import train_and_evaluate

    cfg = RunConfig.model_validate(
        {
            "preset": "opsd",
            "data": {
                "benchmark": "toolalpaca",
                "train_split": "bfcl",
                "max_eval_examples": 2,
                "eval_max_new_tokens": 8,
                "max_prompt_length": 256,
            },
            "train": {"max_steps": 1, "batch_size": 2, "max_new_tokens": 8},
        }
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train_and_evaluate(cfg, ListSink(), output_dir=tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert result.train.steps_completed == 1
    assert result.benchmarks == ["toolalpaca"]
    assert result.eval_report is not None
    metrics = result.eval_report["metrics"]["toolalpaca"]
    assert {"action_accuracy", "argument_accuracy", "full_accuracy"} <= set(metrics)
