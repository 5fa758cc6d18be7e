"""GSM8K (grade-school math): the final number after `####` is the answer.

The solution text without its `<<calc>>` annotations is the explanation. Items have no ids
upstream; ids are the split and the line position, the same in the files and the HF dataset.
"""

from __future__ import annotations

import re
from pathlib import Path

from unisd_core.data.hf import hf_rows
from unisd_core.data.io import Record, field, find_file, read_records
from unisd_core.data.schema import DataError, Example

NAME = "gsm8k"
HF_ID = "openai/gsm8k"
SPLITS = ("train", "test")
_CALC = re.compile(r"<<[^>]*>>")


def example_from_record(record: Record, *, index: int, split: str, origin: str) -> Example:
    question = field(record, "question", origin)
    solution = field(record, "answer", origin)
    reasoning, marker, final = solution.rpartition("####")
    if not marker:
        raise DataError(f"{origin}: field 'answer' has no '#### <number>' line")
    number = final.strip().replace(",", "")
    return Example(
        id=f"{NAME}-{split}-{index}",
        benchmark=NAME,
        task="math",
        question=question,
        answer=number,
        explanation=_CALC.sub("", reasoning).strip(),
        metadata={"split": split},
    )


def _check(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"{NAME} has no split {split!r}; choose one of {list(SPLITS)}")


def load_local(directory: Path, split: str, *, seed: int) -> list[Example]:
    _check(split)
    records = read_records(find_file(directory, f"{split}.jsonl"))
    return [
        example_from_record(r, index=i, split=split, origin=o) for i, (o, r) in enumerate(records)
    ]


def load_hf(split: str, *, seed: int) -> list[Example]:
    _check(split)
    rows = hf_rows(HF_ID, "main", split)
    return [example_from_record(r, index=i, split=split, origin=o) for i, (o, r) in enumerate(rows)]
