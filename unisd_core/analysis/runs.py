"""Helpers over the table of runs: configuration labels and the overall score.

The analysis works on one row per run x benchmark (see :mod:`unisd_core.analysis.cli` for the
full format). A run is identified by the columns the caller names (its configuration and seed);
these helpers never guess silently: duplicate or incomplete runs are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from unisd_core.analysis.coding import (
    code_factors,
    numeric_response,
    require_columns,
    unique_rows,
)
from unisd_core.analysis.errors import AnalysisError

OVERALL = "overall"


def config_labels(
    table: pd.DataFrame,
    factors: Sequence[str],
    *,
    base_label: str = "base",
    all_label: str | None = None,
) -> pd.Series:
    """A readable label per row: the switched-on components joined by ``+``.

    Off/on factors contribute their name when on; two-valued parameters always contribute
    ``name=value`` (so ``gamma=0.01`` and ``gamma=0.001`` stay distinct). Rows with nothing on
    get ``base_label``; rows with every switch on get ``all_label`` when one is given (the paper
    calls that configuration UniSD*).
    """
    coded = code_factors(table, factors)
    high = np.column_stack([c.values > 0 for c in coded])
    uniques, inverse = unique_rows(high)
    labels: list[str] = []
    switches = [c.is_switch for c in coded]
    for row in uniques:
        parts = []
        for factor, on, is_switch in zip(coded, row, switches, strict=True):
            if is_switch:
                if on:
                    parts.append(factor.name)
            else:
                parts.append(f"{factor.name}={factor.high if on else factor.low}")
        label = "+".join(parts) or base_label
        if all_label is not None and all(switches) and bool(row.all()):
            label = all_label
        labels.append(label)
    return pd.Series(np.asarray(labels, dtype=object)[inverse], index=table.index)


def overall_scores(
    table: pd.DataFrame,
    *,
    response: str,
    benchmark: str,
    keys: Sequence[str],
) -> tuple[pd.DataFrame, int]:
    """Mean of ``response`` over benchmarks per run (the paper's overall score).

    Returns the per-run frame (``keys`` + ``response``) and how many runs were left out because
    they lack a value on some benchmark: averaging over fewer benchmarks would mix scales.
    """
    require_columns(table, [response, benchmark, *keys], what="overall-score")
    index = [*keys, benchmark]
    counts = table.groupby(index, dropna=False, sort=False).size()
    if (counts > 1).any():
        example = counts[counts > 1].index[0]
        raise AnalysisError(
            "several rows for the same run and benchmark "
            f"{dict(zip(index, example, strict=True))}; "
            "add a column that identifies runs (e.g. run_id or seed) and name it"
        )
    wide = table.set_index(index)[response].astype(float).unstack(benchmark)
    complete = wide.notna().all(axis=1)
    overall = wide.loc[complete].mean(axis=1).rename(response).reset_index()
    return overall, int((~complete).sum())


def benchmark_groups(
    table: pd.DataFrame,
    *,
    response: str,
    keys: Sequence[str],
    benchmark: str | None,
    overall: bool = True,
) -> list[tuple[str, pd.DataFrame]]:
    """Split ``keys`` + ``response`` (as numbers) by benchmark, plus the overall score.

    Without a benchmark column the whole table is one group named ``overall``. The overall
    group holds one row per run (``keys``) with the mean over benchmarks, for complete runs only.
    """
    require_columns(table, [*keys, *([benchmark] if benchmark else [])], what="run")
    frame = table[[*keys, *([benchmark] if benchmark else [])]].copy()
    frame[response] = numeric_response(table, response)
    # Rows without the metric drop out, and so do benchmarks where it does not exist.
    frame = frame.dropna(subset=[response])
    if benchmark is None:
        return [(OVERALL, frame)]
    groups = [(str(name), g) for name, g in frame.groupby(benchmark, sort=True)]
    if overall and len(groups) > 1:
        scores, _ = overall_scores(frame, response=response, benchmark=benchmark, keys=keys)
        groups.append((OVERALL, scores))
    return groups


@dataclass(frozen=True)
class SeedCube:
    """``values[s, b, c]``: the response of configuration c on benchmark b with seed s (or NaN).

    The last benchmark slice is the overall score when it was requested.
    """

    values: np.ndarray
    seeds: list[object]
    benchmarks: list[str]
    configs: list[object]


def seed_cube(
    table: pd.DataFrame,
    *,
    response: str,
    by: str,
    seed: str,
    benchmark: str | None,
    overall: bool = True,
) -> SeedCube:
    """Seeds x benchmarks x configurations array of ``response``: what paired statistics need.

    Built with integer codes and one scatter (no pivot), so duplicate (configuration, seed,
    benchmark) rows are found as repeated cells and reported. The overall slice averages each
    (seed, configuration) over benchmarks and is NaN unless it has a value on every benchmark.
    """
    require_columns(table, [by, seed, *([benchmark] if benchmark else [])], what="run")
    y = numeric_response(table, response)
    present = ~np.isnan(y)
    seed_column = table[seed]
    if seed_column[present].isna().any():
        raise AnalysisError(f"seed column {seed!r} has missing values; pairing needs every seed")
    seed_codes, seed_values = pd.factorize(seed_column[present], sort=True)
    config_codes, config_values = pd.factorize(table[by][present])
    if benchmark is None:
        bench_codes = np.zeros(int(present.sum()), dtype=np.int64)
        bench_values: list[object] = [OVERALL]
    else:
        bench_codes, bench_index = pd.factorize(table[benchmark][present])
        order = sorted(range(len(bench_index)), key=lambda i: str(bench_index[i]))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        bench_codes = rank[bench_codes]
        bench_values = [bench_index[i] for i in order]
    shape = (len(seed_values), len(bench_values), len(config_values))
    cells = np.ravel_multi_index((seed_codes, bench_codes, config_codes), shape)
    counts = np.bincount(cells, minlength=int(np.prod(shape)))
    if (counts > 1).any():
        s_i, b_i, c_i = np.unravel_index(int(np.argmax(counts > 1)), shape)
        where = f" on benchmark {bench_values[b_i]!r}" if benchmark else ""
        raise AnalysisError(
            f"configuration {config_values[c_i]!r} has several rows for seed "
            f"{seed_values[s_i]!r}{where}; paired statistics need one value per configuration "
            "and seed" + ("" if benchmark else " (name the benchmark column)")
        )
    values = np.full(int(np.prod(shape)), np.nan)
    values[cells] = y[present]
    values = values.reshape(shape)
    names = [str(b) for b in bench_values]
    if benchmark is not None and overall and len(bench_values) > 1:
        # A NaN on any benchmark makes the mean NaN: incomplete runs leave the overall score.
        values = np.concatenate([values, values.mean(axis=1, keepdims=True)], axis=1)
        names.append(OVERALL)
    return SeedCube(values, list(seed_values), names, list(config_values))
