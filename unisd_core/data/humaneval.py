"""HumanEval (164 problems; out-of-distribution evaluation of MBPP-trained models).

The gold answer is the prompt plus the canonical body (a complete function); the test program is
the dataset's `check` function followed by a call on the entry point.
"""

from __future__ import annotations

from pathlib import Path

from unisd_core.data.hf import hf_rows
from unisd_core.data.io import Record, field, find_file, read_records
from unisd_core.data.schema import DataError, Example

NAME = "humaneval"
HF_ID = "openai/openai_humaneval"
SPLITS = ("test", "train")  # a single split; `train` is accepted for symmetry with other loaders


def example_from_record(record: Record, *, origin: str) -> Example:
    task_id = field(record, "task_id", origin)
    prompt = field(record, "prompt", origin)
    entry = field(record, "entry_point", origin)
    test = field(record, "test", origin)
    solution = field(record, "canonical_solution", origin)
    return Example(
        id=f"{NAME}-{task_id.rsplit('/', 1)[-1]}",
        benchmark=NAME,
        task="code",
        question=prompt,
        answer=prompt + solution,
        tests=(f"{test}\n\ncheck({entry})\n",),
        entry_point=entry,
        metadata={"split": "test", "task_id": task_id},
    )


def _check(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"{NAME} has no split {split!r}; it has one split, 'test'")


def load_local(directory: Path, split: str, *, seed: int) -> list[Example]:
    _check(split)
    path = find_file(directory, "HumanEval.jsonl")
    return [example_from_record(r, origin=o) for o, r in read_records(path)]


def load_hf(split: str, *, seed: int) -> list[Example]:
    _check(split)
    return [example_from_record(r, origin=o) for o, r in hf_rows(HF_ID, None, "test")]
