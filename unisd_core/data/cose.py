"""CoS-E v1.11 explanations joined with CommonsenseQA v1.11 questions (5 options).

Local files: the joined `cose_v1.11_{train,validation}_joined.jsonl(.gz)` (fields as in HF
`Salesforce/cos_e` v1.11), or, when those are absent, the raw CoS-E and CommonsenseQA files, joined
here on `id`. CoS-E has no test split: `test` reads validation, as the paper evaluates on it.
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

NAME = "cose"
HF_ID = "Salesforce/cos_e"
SPLITS = {"train": "train", "validation": "validation", "test": "validation"}
RAW = {
    "train": ("cose_train_v1.11.jsonl", "cqa_v1.11_train_rand_split.jsonl"),
    "validation": ("cose_dev_v1.11.jsonl", "cqa_v1.11_dev_rand_split.jsonl"),
}


def example_from_record(record: Record, *, seed: int, origin: str, split: str) -> Example:
    qid = field(record, "id", origin)
    choices = [str(c) for c in field(record, "choices", origin, list)]
    answer = field(record, "answer", origin)
    if answer not in choices:
        raise DataError(f"{origin}: field 'answer' is not one of 'choices'")
    shuffled = shuffle_options(choices, choices.index(answer), seed=seed, key=qid, origin=origin)
    return Example(
        id=f"{NAME}-{qid}",
        benchmark=NAME,
        task="mcqa",
        question=field(record, "question", origin),
        options=shuffled.options,
        answer=shuffled.answer,
        explanation=optional_text(record, "abstractive_explanation"),
        metadata={
            "split": split,
            "option_order": shuffled.order,
            "shuffle_seed": seed,
            "extractive_explanation": optional_text(record, "extractive_explanation"),
        },
    )


def join_raw(
    cose: list[tuple[str, Record]], cqa: list[tuple[str, Record]]
) -> list[tuple[str, Record]]:
    """CommonsenseQA records (file order) with their CoS-E explanations, as joined records."""
    explanations: dict[str, Record] = {}
    for origin, record in cose:
        explanations[field(record, "id", origin)] = field(record, "explanation", origin, dict)
    joined: list[tuple[str, Record]] = []
    for origin, record in cqa:
        qid = field(record, "id", origin)
        question = field(record, "question", origin, dict)
        choices = field(question, "choices", f"{origin} question", list)
        labels = [str(c.get("label")) for c in choices]
        key = field(record, "answerKey", origin)
        if key not in labels:
            raise DataError(f"{origin}: field 'answerKey' {key!r} is not a choice label")
        if qid not in explanations:
            raise DataError(f"{origin}: id {qid!r} has no CoS-E explanation")
        texts = [str(c.get("text")) for c in choices]
        joined.append(
            (
                origin,
                {
                    "id": qid,
                    "question": field(question, "stem", f"{origin} question"),
                    "choices": texts,
                    "answer": texts[labels.index(key)],
                    "abstractive_explanation": explanations[qid].get("open-ended", ""),
                    "extractive_explanation": explanations[qid].get("selected", ""),
                },
            )
        )
    return joined


def load_local(directory: Path, split: str, *, seed: int) -> list[Example]:
    name = split_name(NAME, split, SPLITS)
    try:
        records = list(read_records(find_file(directory, f"cose_v1.11_{name}_joined.jsonl")))
    except DataError:
        cose_file, cqa_file = RAW[name]
        records = join_raw(
            list(read_records(find_file(directory, cose_file))),
            list(read_records(find_file(directory, cqa_file))),
        )
    return [example_from_record(r, seed=seed, origin=o, split=name) for o, r in records]


def load_hf(split: str, *, seed: int) -> list[Example]:
    name = split_name(NAME, split, SPLITS)
    return [
        example_from_record(r, seed=seed, origin=o, split=name)
        for o, r in hf_rows(HF_ID, "v1.11", name)
    ]
