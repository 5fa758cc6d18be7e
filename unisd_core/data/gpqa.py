"""GPQA main (448 items; `diamond` split: 198), from the gzipped CSV of the official release.

The authors ask that GPQA items never appear as plain text online: the files stay gzipped in the
repository, and nothing here logs or prints item text. Four options (the correct answer and three
distractors, in no order upstream) are shuffled per item.
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
from unisd_core.data.schema import Example

NAME = "gpqa"
HF_ID = "Idavidrein/gpqa"
# GPQA has a single split; it is out-of-distribution evaluation for ScienceQA-trained models.
SPLITS = {"train": "gpqa_main", "test": "gpqa_main", "main": "gpqa_main", "diamond": "gpqa_diamond"}


def example_from_record(record: Record, *, seed: int, origin: str) -> Example:
    record_id = field(record, "Record ID", origin).strip()
    question = field(record, "Question", origin).strip()
    options = [field(record, "Correct Answer", origin).strip()]
    options += [field(record, f"Incorrect Answer {i}", origin).strip() for i in (1, 2, 3)]
    shuffled = shuffle_options(options, 0, seed=seed, key=record_id, origin=origin)
    return Example(
        id=f"{NAME}-{record_id}",
        benchmark=NAME,
        task="mcqa",
        question=question,
        options=shuffled.options,
        answer=shuffled.answer,
        explanation=optional_text(record, "Explanation").strip(),
        metadata={
            "option_order": shuffled.order,
            "shuffle_seed": seed,
            "domain": record.get("High-level domain"),
            "subdomain": record.get("Subdomain"),
        },
    )


def _subset(split: str) -> str:
    return split_name(NAME, split, SPLITS)


def load_local(directory: Path, split: str, *, seed: int) -> list[Example]:
    subset = _subset(split)
    path = find_file(directory, f"{subset}.csv")
    return [example_from_record(r, seed=seed, origin=o) for o, r in read_records(path)]


def load_hf(split: str, *, seed: int) -> list[Example]:
    subset = _subset(split)
    return [example_from_record(r, seed=seed, origin=o) for o, r in hf_rows(HF_ID, subset, "train")]
