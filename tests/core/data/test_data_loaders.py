"""Loaders: counts, fields, source equivalence and error messages.

GPQA items must never be printed: comparisons go through digests so a failing assert shows
hashes, not question text.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from unisd_core.data import (
    BENCHMARKS,
    BUNDLED_DIR,
    EVAL_SPLITS,
    OOD_PAIRS,
    DataError,
    Example,
    load_examples,
)
from unisd_core.data.options import LETTERS

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"shared benchmark data not found at {SHARED} (optional)"
)

BUNDLED_COUNTS = {
    ("scienceqa", "train"): 32,
    ("scienceqa", "validation"): 8,
    ("scienceqa", "test"): 16,
    ("gpqa", "test"): 24,
    ("mbpp", "train"): 32,
    ("mbpp", "validation"): 8,
    ("mbpp", "test"): 24,
    ("humaneval", "test"): 164,
    ("cose", "train"): 32,
    ("cose", "validation"): 16,
    ("toolalpaca", "train"): 21,
    ("toolalpaca", "test"): 20,
    ("gsm8k", "train"): 32,
    ("gsm8k", "test"): 16,
    ("medmcqa", "train"): 32,
    ("medmcqa", "validation"): 16,
}
SHARED_COUNTS = {
    ("scienceqa", "train"): 520,
    ("scienceqa", "validation"): 180,
    ("scienceqa", "test"): 2224,
    ("gpqa", "test"): 448,
    ("gpqa", "diamond"): 198,
    ("mbpp", "train"): 374,
    ("mbpp", "validation"): 90,
    ("mbpp", "prompt"): 10,
    ("mbpp", "test"): 257,
    ("mbpp", "full:test"): 500,
    ("mbpp", "sanitized:train"): 120,
    ("humaneval", "test"): 164,
    ("cose", "train"): 9741,
    ("cose", "validation"): 1221,
    ("toolalpaca", "train"): 114,
    ("toolalpaca", "test"): 97,
    ("toolalpaca", "simulated"): 100,
    ("gsm8k", "train"): 7473,
    ("gsm8k", "test"): 1319,
    ("medmcqa", "validation"): 4183,
}


def digest(example: Example) -> str:
    return hashlib.sha256(example.model_dump_json().encode()).hexdigest()[:16]


def check_fields(example: Example) -> None:
    assert example.id.startswith(f"{example.benchmark}-")
    assert example.question.strip()
    if example.task == "mcqa":
        letters = LETTERS[: len(example.options)]
        assert 2 <= len(example.options) <= 5
        assert example.answer in letters
        assert sorted(example.metadata["option_order"]) == list(range(len(example.options)))
    elif example.task == "code":
        assert example.tests
        assert example.entry_point
        assert re.search(rf"def\s+{example.entry_point}\s*\(", example.answer)
    elif example.task == "tooluse":
        calls = json.loads(example.answer)
        assert calls
        assert all(call["Action"] for call in calls)
    else:
        float(example.answer)


@pytest.mark.parametrize(("benchmark", "split"), sorted(BUNDLED_COUNTS))
def test_bundled_counts_and_fields(benchmark: str, split: str) -> None:
    examples = load_examples(benchmark, split=split)
    assert len(examples) == BUNDLED_COUNTS[benchmark, split]
    assert len({e.id for e in examples}) == len(examples)
    for example in examples:
        assert example.benchmark == benchmark
        check_fields(example)


def test_every_benchmark_has_a_bundled_eval_split() -> None:
    assert set(EVAL_SPLITS) == set(BENCHMARKS)
    for benchmark in BENCHMARKS:
        assert load_examples(benchmark, split=EVAL_SPLITS[benchmark], limit=2)


def test_bundle_stays_small_and_gpqa_stays_gzipped() -> None:
    total = sum(p.stat().st_size for p in BUNDLED_DIR.rglob("*") if p.is_file())
    assert total < 1_500_000
    gpqa_files = [p.name for p in (BUNDLED_DIR / "gpqa").iterdir()]
    assert all(name.endswith(".gz") or name == "license.txt" for name in gpqa_files)


def test_ood_pairs() -> None:
    assert OOD_PAIRS == {"scienceqa": "gpqa", "mbpp": "humaneval"}


def test_limit_and_seeded_option_order() -> None:
    a = load_examples("cose", split="validation", seed=42)
    b = load_examples("cose", split="validation", seed=42)
    c = load_examples("cose", split="validation", seed=7)
    assert [digest(x) for x in a] == [digest(x) for x in b]
    assert [x.metadata["option_order"] for x in a] != [x.metadata["option_order"] for x in c]
    for example in c:  # the gold text follows its option wherever the shuffle put it
        original = example.metadata["option_order"][LETTERS.index(example.answer)]
        assert (
            example.options[LETTERS.index(example.answer)]
            == example.options[example.metadata["option_order"].index(original)]
        )
    assert len(load_examples("cose", split="validation", limit=3)) == 3


def test_mbpp_reference_is_renamed_to_the_tested_function() -> None:
    for example in load_examples("mbpp", split="train"):
        assert example.tests[0].count(f"{example.entry_point}(") >= 1
        assert re.match(rf"def\s+{example.entry_point}\s*\(", example.metadata["signature"])
        assert "\r" not in example.answer


def test_toolalpaca_offline_train_is_a_held_out_eval_set() -> None:
    train = load_examples("toolalpaca", split="train")
    test = load_examples("toolalpaca", split="test")
    assert all("held out" in e.metadata["train_source"] for e in train)
    assert not {e.metadata["api"] for e in train} & {e.metadata["api"] for e in test}


@needs_shared
@pytest.mark.parametrize(("benchmark", "split"), sorted(SHARED_COUNTS))
def test_shared_data_counts(benchmark: str, split: str) -> None:
    examples = load_examples(benchmark, source=f"local:{SHARED}", split=split)
    assert len(examples) == SHARED_COUNTS[benchmark, split]
    assert len({e.id for e in examples}) == len(examples)
    for example in examples[:50]:
        check_fields(example)


@needs_shared
@pytest.mark.parametrize(("benchmark", "split"), sorted(BUNDLED_COUNTS))
def test_bundled_items_equal_their_local_originals(benchmark: str, split: str) -> None:
    local_split = "validation" if (benchmark, split) == ("medmcqa", "train") else split
    local = {
        e.id: digest(e)
        for e in load_examples(benchmark, source=f"local:{SHARED}", split=local_split)
    }
    for example in load_examples(benchmark, split=split):
        if (benchmark, split) == ("medmcqa", "train"):
            # the bundled stand-in train file is drawn from the dev split; only the split differs
            example = example.model_copy(
                update={"metadata": {**example.metadata, "split": "validation"}}
            )
        assert local.get(example.id) == digest(example), example.id


@needs_shared
def test_cose_raw_files_join_like_the_joined_file(tmp_path: Path) -> None:
    for name in ("cose_dev_v1.11.jsonl", "cqa_v1.11_dev_rand_split.jsonl"):
        shutil.copy(SHARED / "cose" / name, tmp_path / name)
    joined = load_examples("cose", source=f"local:{SHARED}", split="validation")
    raw = load_examples("cose", source=f"local:{tmp_path}", split="validation")
    assert [digest(e) for e in raw] == [digest(e) for e in joined]


@needs_shared
def test_medmcqa_train_offline_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="train split is not in the offline copies"):
        load_examples("medmcqa", source=f"local:{SHARED}", split="train")


def test_unknown_benchmark_split_and_source() -> None:
    with pytest.raises(DataError, match="unknown benchmark 'nope'"):
        load_examples("nope")
    with pytest.raises(DataError, match="no split 'dev'"):
        load_examples("gsm8k", split="dev")
    with pytest.raises(DataError, match="unknown data source"):
        load_examples("gsm8k", source="s3://x")
    with pytest.raises(DataError, match="does not exist"):
        load_examples("gsm8k", source="local:/no/such/dir")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "gsm8k").mkdir()
    with pytest.raises(DataError, match=r"test\.jsonl .*not found|not found: test\.jsonl"):
        load_examples("gsm8k", source=f"local:{tmp_path}", split="test")


def test_malformed_record_names_file_line_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    good = json.dumps({"question": "1+1?", "answer": "1+1=2\n#### 2"})
    (folder / "test.jsonl").write_text(f"{good}\n{good}\n" + json.dumps({"question": "x"}) + "\n")
    with pytest.raises(DataError, match=r"test\.jsonl:3: missing field 'answer'"):
        load_examples("gsm8k", source=f"local:{tmp_path}", split="test")
    (folder / "test.jsonl").write_text(f"{good}\n{{not json\n")
    with pytest.raises(DataError, match=r"test\.jsonl:2: invalid JSON"):
        load_examples("gsm8k", source=f"local:{tmp_path}", split="test")


def test_wrong_field_type_and_gzip_are_handled(tmp_path: Path) -> None:
    folder = tmp_path / "cose"
    folder.mkdir()
    record = {"id": "q1", "question": "Where?", "choices": "bank", "answer": "bank"}
    with gzip.open(folder / "cose_v1.11_validation_joined.jsonl.gz", "wt") as handle:
        handle.write(json.dumps(record) + "\n")
    with pytest.raises(DataError, match=r"\.jsonl\.gz:1: field 'choices' should be list"):
        load_examples("cose", source=f"local:{tmp_path}", split="validation")


def test_hf_source_without_datasets_is_a_clear_error() -> None:
    pytest.importorskip  # noqa: B018 - documents that `datasets` is optional
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match="needs the `datasets` package"):
            load_examples("gsm8k", source="hf", split="test")
    else:
        pytest.skip("datasets is installed; the offline error path is not reachable")
