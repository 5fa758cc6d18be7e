"""ScienceQA, text-only items (records of the official `problems.json`).

Local files (as in ../shared/data/scienceqa): `problems.json` (the full official file, when a
user has it) or `problems_textonly_pid1-1773.json` for train/validation, and `test_textonly.jsonl`
for test. HF: `derek-thomas/ScienceQA` filtered to `image is None`. The context shown to the
student is the hint followed by the lecture; the solution is the explanation.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from unisd_core.data.hf import hf_rows
from unisd_core.data.io import (
    Record,
    field,
    find_file,
    optional_text,
    read_records,
    split_name,
)
from unisd_core.data.options import shuffle_options
from unisd_core.data.schema import DataError, Example

NAME = "scienceqa"
HF_ID = "derek-thomas/ScienceQA"
SPLITS = {"train": "train", "validation": "val", "val": "val", "test": "test"}
PROBLEM_FILES = ("problems.json", "problems_textonly_pid1-1773.json")


def example_from_record(record: Record, *, seed: int, origin: str, pid: str, split: str) -> Example:
    choices = field(record, "choices", origin, list)
    answer_index = field(record, "answer", origin, int)
    question = field(record, "question", origin)
    # Keyed by content, not pid: HF rows carry no pid, and the order must match across sources.
    key = question + "\x1f" + "\x1f".join(str(c) for c in choices)
    shuffled = shuffle_options(choices, answer_index, seed=seed, key=key, origin=origin)
    hint, lecture = optional_text(record, "hint"), optional_text(record, "lecture")
    return Example(
        id=f"{NAME}-{pid}",
        benchmark=NAME,
        task="mcqa",
        question=question,
        context="\n".join(part for part in (hint, lecture) if part),
        options=shuffled.options,
        answer=shuffled.answer,
        explanation=optional_text(record, "solution"),
        metadata={
            "split": split,
            "option_order": shuffled.order,
            "shuffle_seed": seed,
            "subject": record.get("subject"),
            "topic": record.get("topic"),
            "grade": record.get("grade"),
        },
    )


def _split_name(split: str) -> str:
    return split_name(NAME, split, SPLITS)


def _from_records(
    records: Iterable[tuple[str, Record]], wanted: str, seed: int, split_field: bool
) -> list[Example]:
    examples = []
    for origin, record in records:
        if record.get("image") is not None:
            continue  # text-only benchmark
        if split_field and record.get("split") != wanted:
            continue
        pid = str(record.get("pid", record.get("_key", "")))
        if not pid:
            raise DataError(f"{origin}: missing field 'pid'")
        split = "validation" if wanted == "val" else wanted
        examples.append(example_from_record(record, seed=seed, origin=origin, pid=pid, split=split))
    return examples


def load_local(directory: Path, split: str, *, seed: int) -> list[Example]:
    wanted = _split_name(split)
    if wanted == "test" and not (directory / "problems.json").is_file():
        for name in ("test_textonly.jsonl", "test_textonly.jsonl.gz"):
            if (directory / name).is_file():
                return _from_records(read_records(directory / name), wanted, seed, True)
    path = find_file(directory, *PROBLEM_FILES)
    return _from_records(read_records(path), wanted, seed, True)


def load_hf(split: str, *, seed: int) -> list[Example]:
    wanted = _split_name(split)
    hf_split = {"val": "validation"}.get(wanted, wanted)
    # HF rows have no pid; ids count text-only rows in the split's order.
    text_only = (
        (origin, row) for origin, row in hf_rows(HF_ID, None, hf_split) if row.get("image") is None
    )
    return [
        example_from_record(row, seed=seed, origin=origin, pid=f"{hf_split}{i}", split=hf_split)
        for i, (origin, row) in enumerate(text_only)
    ]
