"""MedMCQA (4 options). Official files number the correct option 1-4 (`cop`), the HF copy 0-3.

Local files: `train.json` and `dev.json` (JSON lines, maybe gzipped). The train split (182,822
rows) is not in the offline copies: loading it without the file is a clear error. The official
test split has no answers, so it is not offered.
"""

from __future__ import annotations

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

NAME = "medmcqa"
HF_ID = "openlifescienceai/medmcqa"
SPLITS = {"train": "train", "validation": "dev", "test": "dev"}


def example_from_record(
    record: Record, *, seed: int, origin: str, split: str, cop_base: int
) -> Example:
    qid = field(record, "id", origin)
    options = [field(record, f"op{letter}", origin) for letter in "abcd"]
    cop = field(record, "cop", origin, int) - cop_base
    if not 0 <= cop < 4:
        raise DataError(
            f"{origin}: field 'cop' is {cop + cop_base}; expected {cop_base}-{cop_base + 3}"
        )
    shuffled = shuffle_options(options, cop, seed=seed, key=qid, origin=origin)
    return Example(
        id=f"{NAME}-{qid}",
        benchmark=NAME,
        task="mcqa",
        question=field(record, "question", origin),
        options=shuffled.options,
        answer=shuffled.answer,
        explanation=optional_text(record, "exp"),
        metadata={
            "split": split,
            "option_order": shuffled.order,
            "shuffle_seed": seed,
            "subject": record.get("subject_name"),
            "topic": record.get("topic_name"),
            "choice_type": record.get("choice_type"),
        },
    )


def _split(split: str) -> str:
    return split_name(NAME, split, SPLITS)


def load_local(directory: Path, split: str, *, seed: int) -> list[Example]:
    name = _split(split)
    try:
        path = find_file(directory, f"{name}.json", f"{name}.jsonl")
    except DataError as exc:
        if name == "train":
            raise DataError(
                f"{exc}. The MedMCQA train split is not in the offline copies; put the official "
                "train.json there or use source 'hf'"
            ) from exc
        raise
    out_split = "validation" if name == "dev" else name
    return [
        example_from_record(r, seed=seed, origin=o, split=out_split, cop_base=1)
        for o, r in read_records(path)
    ]


def load_hf(split: str, *, seed: int) -> list[Example]:
    name = "validation" if _split(split) == "dev" else "train"
    return [
        example_from_record(r, seed=seed, origin=o, split=name, cop_base=0)
        for o, r in hf_rows(HF_ID, None, name)
    ]
