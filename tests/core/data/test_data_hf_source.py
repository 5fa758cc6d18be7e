"""The `hf` source gives the same Examples as the files, checked with a stand-in `datasets`.

The stand-in serves rows in each HF dataset's schema, built from the bundled files the way the
HF builders build them (MedMCQA's `cop` 0-based, ScienceQA without pids, ...). No network.
"""

from __future__ import annotations

import hashlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from unisd_core.data import BUNDLED_DIR, load_examples
from unisd_core.data.io import read_records
from unisd_core.data.schema import Example


def _rows(path: Path) -> list[dict[str, Any]]:
    return [dict(record) for _, record in read_records(path)]


def _hf_rows(dataset_id: str, config: str | None, split: str) -> list[dict[str, Any]]:
    b = BUNDLED_DIR
    if dataset_id == "openai/gsm8k":
        return _rows(b / "gsm8k" / f"{split}.jsonl")
    if dataset_id == "openai/openai_humaneval":
        return _rows(b / "humaneval" / "HumanEval.jsonl.gz")
    if dataset_id == "google-research-datasets/mbpp":
        name = "mbpp.jsonl" if config == "full" else "sanitized-mbpp.json"
        return _rows(b / "mbpp" / name)  # the loader selects the split's task-id range
    if dataset_id == "Salesforce/cos_e":
        return _rows(b / "cose" / f"cose_v1.11_{split}_joined.jsonl")
    if dataset_id == "openlifescienceai/medmcqa":
        rows = _rows(b / "medmcqa" / ("dev.json" if split == "validation" else "train.json"))
        return [{**row, "cop": row["cop"] - 1} for row in rows]
    if dataset_id == "Idavidrein/gpqa":
        return _rows(b / "gpqa" / "gpqa_main.csv.gz")
    if dataset_id == "Ahren09/ToolAlpaca":
        return _rows(b / "toolalpaca" / "sdft_eval_data_97.jsonl")
    if dataset_id == "derek-thomas/ScienceQA":
        rows = _rows(b / "scienceqa" / "test_textonly.jsonl")
        return [{k: v for k, v in row.items() if k not in ("pid", "source")} for row in rows]
    raise AssertionError(f"unexpected dataset {dataset_id}")


@pytest.fixture
def fake_datasets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, str]]:
    calls: list[tuple[str, str | None, str]] = []

    def load_dataset(dataset_id: str, config: str | None = None, *, split: str) -> Any:
        calls.append((dataset_id, config, split))
        return _hf_rows(dataset_id, config, split)

    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)
    return calls


def _digest(example: Example, *, drop_id: bool = False) -> str:
    data = example.model_dump(mode="json", exclude={"id"} if drop_id else set())
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("benchmark", "split"),
    [
        ("gsm8k", "test"),
        ("humaneval", "test"),
        ("mbpp", "test"),
        ("mbpp", "train"),
        ("cose", "validation"),
        ("medmcqa", "validation"),
        ("gpqa", "test"),
        ("toolalpaca", "test"),
    ],
)
def test_hf_rows_give_the_same_examples(
    fake_datasets: list[tuple[str, str | None, str]], benchmark: str, split: str
) -> None:
    local = load_examples(benchmark, split=split)
    remote = load_examples(benchmark, source="hf", split=split)
    assert [_digest(e) for e in remote] == [_digest(e) for e in local]
    assert fake_datasets


def test_scienceqa_hf_rows_match_except_for_the_pid_based_id(
    fake_datasets: list[tuple[str, str | None, str]],
) -> None:
    local = load_examples("scienceqa", split="test")
    remote = load_examples("scienceqa", source="hf", split="test")
    assert [_digest(e, drop_id=True) for e in remote] == [_digest(e, drop_id=True) for e in local]
    assert fake_datasets == [("derek-thomas/ScienceQA", None, "test")]


def test_hub_failures_become_data_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from unisd_core.data import DataError

    def offline(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("no route to hub")

    module = types.ModuleType("datasets")
    module.load_dataset = offline  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)
    with pytest.raises(DataError, match=r"could not load openai/gsm8k .*ConnectionError"):
        load_examples("gsm8k", source="hf", split="test")
