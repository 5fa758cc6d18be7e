"""Benchmark: analyse a 2^5 x 5 seeds x 6 benchmarks ablation (960 runs) end to end.

Times are reported relative to reading the same table with pandas (``pd.read_csv``), so the
number means the same on a fast or a slow machine. Target: the in-memory analysis under 20x.
Both are CPU times of this process (``time.process_time``), medians over repeats: on a shared
development machine wall-clock times swing with other people's jobs, CPU times much less.

    python bench/analysis.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from unisd_core.analysis import (
    config_labels,
    effects_by_benchmark,
    full_factorial,
    gain_over_base,
    paired_comparisons,
    power_summary,
    retention_frontier,
)
from unisd_core.analysis.cli import analyze

COMPONENTS = ["agreement", "ema", "contrastive", "feature_matching", "clipping"]
BENCHMARKS = ["scienceqa", "mbpp", "cose", "toolalpaca", "gpqa", "humaneval"]
TARGET = 20.0


def ablation_table(seed: int = 0) -> pd.DataFrame:
    """960 runs: accuracy with two main effects, one interaction, seed shifts and noise."""
    rng = np.random.default_rng(seed)
    runs = full_factorial(COMPONENTS, seeds=5).runs().drop(columns="config")
    pieces = []
    for i, benchmark in enumerate(BENCHMARKS):
        table = runs.copy()
        x = {c: np.where(table[c], 1.0, -1.0) for c in COMPONENTS}
        shift = rng.normal(0, 1, size=5)[table["seed"].to_numpy()]
        table["benchmark"] = benchmark
        table["accuracy"] = (
            55
            + 3 * i
            + 1.5 * x["agreement"]
            + 0.8 * x["clipping"]
            + 0.6 * x["agreement"] * x["ema"]
            + shift
            + rng.normal(0, 1, len(table))
        )
        table["retention_ppl"] = (
            2.5 + 0.3 * x["contrastive"] - 0.1 * x["ema"] + rng.normal(0, 0.05, len(table))
        )
        pieces.append(table)
    table = pd.concat(pieces, ignore_index=True)
    table.insert(0, "run_id", [f"run-{i % 160:03d}" for i in range(len(table))])
    return table


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm caches and imports
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def analyse_in_memory(table: pd.DataFrame) -> None:
    """Everything the Analysis tab needs for one metric, without touching the disk."""
    table = table.assign(config=config_labels(table, COMPONENTS))
    effects_by_benchmark(table, factors=COMPONENTS, response="accuracy", seed="seed")
    compared = paired_comparisons(
        table, response="accuracy", by="config", reference="base", benchmark="benchmark"
    )
    power_summary(compared)
    gain_over_base(table, response="accuracy", by="config", base="base")
    retention_frontier(
        table, accuracy="accuracy", retention="retention_ppl", by="config", benchmark="benchmark"
    )


def main() -> None:
    table = ablation_table()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "runs.csv"
        table.to_csv(source, index=False)
        loaded = pd.read_csv(source)
        read = median_seconds(lambda: pd.read_csv(source), repeats=50)
        core = median_seconds(lambda: analyse_in_memory(loaded), repeats=9)
        full = median_seconds(lambda: analyze(source, Path(tmp) / "out", "accuracy"), repeats=5)
        n_files = len(analyze(source, Path(tmp) / "out", "accuracy")["files"])
        effects = pd.read_csv(Path(tmp) / "out" / "effects.csv", keep_default_na=False)

    print(f"table: {len(table)} rows (2^5 configs x 5 seeds x 6 benchmarks)")
    print(f"pd.read_csv:                       {read * 1e3:8.2f} ms CPU  (1.0x)")
    print(
        f"analysis in memory (one metric):   {core * 1e3:8.2f} ms CPU  ({core / read:5.1f}x, "
        f"target < {TARGET:.0f}x: {'ok' if core / read < TARGET else 'MISSED'})"
    )
    print(
        f"analyze() file to files (CSV+TeX): {full * 1e3:8.2f} ms CPU  ({full / read:5.1f}x, "
        f"reads, analyses, writes {n_files} files)"
    )
    overall = effects[effects["benchmark"] == "overall"]
    print("\noverall effects on accuracy (true: agreement 3.0, clipping 1.6, agreement:ema 1.2)")
    print(
        overall[["term", "estimate", "ci_low", "ci_high", "aliased_with"]].to_string(
            index=False, float_format=lambda v: f"{v:+.3f}"
        )
    )


if __name__ == "__main__":
    main()
