"""Benchmark data: typed Examples from bundled samples, local files or the HF hub.

`load_examples("mbpp", source="local:/data", split="test")`. Sources:
- `bundled`: small samples shipped in `bundled/<benchmark>/`, in the original file formats;
- `local:<dir>`: the original files, in `<dir>/<benchmark>/` (the layout of ../shared/data) or
  directly in `<dir>`;
- `hf`: Hugging Face dataset ids (needs the optional `datasets` package and internet).
Every source goes through the same record parser, so an item gives the same Example from each.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from unisd_core.data import cose, gpqa, gsm8k, humaneval, mbpp, medmcqa, scienceqa, toolalpaca
from unisd_core.data.schema import DataError, Example

BUNDLED_DIR = Path(__file__).parent / "bundled"
LOADERS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (scienceqa, gpqa, mbpp, humaneval, cose, toolalpaca, gsm8k, medmcqa)
}
BENCHMARKS = tuple(LOADERS)
# Training benchmark -> its out-of-distribution evaluation benchmark (the paper's cross-eval).
OOD_PAIRS = {"scienceqa": "gpqa", "mbpp": "humaneval"}
# The split each benchmark is evaluated on (GPQA and HumanEval have a single split).
EVAL_SPLITS = {
    "scienceqa": "test",
    "gpqa": "test",
    "mbpp": "test",
    "humaneval": "test",
    "cose": "validation",
    "toolalpaca": "test",
    "gsm8k": "test",
    "medmcqa": "validation",
}

__all__ = [
    "BENCHMARKS",
    "BUNDLED_DIR",
    "EVAL_SPLITS",
    "OOD_PAIRS",
    "DataError",
    "Example",
    "benchmark_dir",
    "load_examples",
]


def benchmark_dir(benchmark: str, source: str) -> Path:
    """The folder holding a benchmark's files for a `bundled` or `local:<dir>` source."""
    if source == "bundled":
        return BUNDLED_DIR / benchmark
    root = Path(source.removeprefix("local:")).expanduser()
    if not root.is_dir():
        raise DataError(f"data source {source!r}: folder {root} does not exist")
    nested = root / benchmark
    return nested if nested.is_dir() else root


def load_examples(
    benchmark: str,
    *,
    source: str = "bundled",
    split: str = "train",
    seed: int = 42,
    limit: int | None = None,
) -> list[Example]:
    """Load one split of a benchmark as Examples (the first `limit` items when given).

    `seed` drives the per-item shuffling of multiple-choice options (recorded in each Example's
    metadata). Raises DataError for an unknown benchmark, split or source, a missing file, or a
    malformed record (the message names the file, the line and the field).
    """
    loader = LOADERS.get(benchmark)
    if loader is None:
        raise DataError(f"unknown benchmark {benchmark!r}; choose one of {list(BENCHMARKS)}")
    if limit is not None and limit < 0:
        raise DataError("limit must be >= 0")
    if source == "hf":
        examples: list[Example] = loader.load_hf(split, seed=seed)
    elif source == "bundled" or (source.startswith("local:") and len(source) > len("local:")):
        examples = loader.load_local(benchmark_dir(benchmark, source), split, seed=seed)
    else:
        raise DataError(f"unknown data source {source!r}; use 'bundled', 'local:<dir>' or 'hf'")
    if not examples:
        raise DataError(f"{benchmark}/{split} from {source} holds no examples")
    return examples[:limit] if limit is not None else examples
