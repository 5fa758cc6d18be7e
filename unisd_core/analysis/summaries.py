"""Summaries the Analysis tab draws: gains over the base, the retention/accuracy frontier, and
mean +/- CI learning curves across seeds."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from unisd_core.analysis.coding import numeric_response, require_columns
from unisd_core.analysis.distributions import t_quantile
from unisd_core.analysis.errors import AnalysisError
from unisd_core.analysis.runs import OVERALL, SeedCube, benchmark_groups, seed_cube

GAIN_COLUMNS = [
    "benchmark",
    "config",
    "gain",
    "ci_low",
    "ci_high",
    "n",
    "config_mean",
    "base_mean",
    "method",
]


def gain_over_base(
    table: pd.DataFrame,
    *,
    response: str,
    by: str,
    base: object,
    seed: str | None = "seed",
    benchmark: str | None = "benchmark",
    overall: bool = True,
    configs: Sequence[object] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Gain of each configuration over ``base`` per benchmark (the heatmap's cells), with CIs.

    With a seed column and two or more seeds shared with the base, the gain is the mean per-seed
    difference and the interval the paired t interval (``method="paired"``). Otherwise the gain
    is the difference of means with Welch's interval (``"welch"``), or a one-sample interval when
    one side was measured once, e.g. an untrained base model (``"one-sample"``, that side taken
    as exact). ``"none"``: too few runs for an interval. ``config_mean`` averages all runs.
    """
    _check_confidence(confidence)
    if seed is not None:
        cube = seed_cube(
            table, response=response, by=by, seed=seed, benchmark=benchmark, overall=overall
        )
        labels = _gain_labels(cube.configs, base, configs, by, "")
        return _gains_from_cube(cube, base, labels, confidence)

    groups = benchmark_groups(
        table, response=response, keys=[by], benchmark=benchmark, overall=False
    )
    pieces = []
    for name, frame in groups:
        stats_by = frame.groupby(by, sort=False)[response].agg(["mean", "var", "count"])
        labels = _gain_labels(stats_by.index, base, configs, by, name)
        config_stats = stats_by.loc[labels]
        base_stats = stats_by.loc[base]
        gain = config_stats["mean"].to_numpy() - base_stats["mean"]
        half, method = _unpaired_half(
            config_stats["var"].to_numpy(),
            config_stats["count"].to_numpy(),
            float(base_stats["var"]),
            int(base_stats["count"]),
            confidence,
        )
        piece = pd.DataFrame(
            {
                "benchmark": name,
                "config": labels,
                "gain": gain,
                "ci_low": gain - half,
                "ci_high": gain + half,
                "n": config_stats["count"].to_numpy(),
                "config_mean": config_stats["mean"].to_numpy(),
                "base_mean": base_stats["mean"],
                "method": method,
            }
        )
        pieces.append(piece)
    result = pd.concat(pieces, ignore_index=True)
    if overall and benchmark is not None and len(groups) > 1:
        # Without seeds there is no run identity to average over benchmarks: report the mean of
        # the per-benchmark gains, without an interval.
        mean_gain = result.groupby("config", sort=False)["gain"].mean()
        extra = pd.DataFrame(
            {"benchmark": OVERALL, "config": mean_gain.index, "gain": mean_gain.to_numpy()}
        )
        extra["method"] = "none"
        result = pd.concat([result, extra], ignore_index=True)
    return result[GAIN_COLUMNS]


def as_heatmap(gains: pd.DataFrame, value: str = "gain") -> pd.DataFrame:
    """Configuration x benchmark matrix of ``value`` (rows and columns in first-seen order)."""
    require_columns(gains, ["config", "benchmark", value], what="gains")
    matrix = gains.pivot(index="config", columns="benchmark", values=value)
    return matrix.loc[pd.unique(gains["config"]), pd.unique(gains["benchmark"])]


def pareto_optimal(points: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Mask of points no other point dominates (at least as good everywhere, better somewhere).

    Points with a NaN coordinate are never optimal. Identical points are all optimal.
    """
    values = np.asarray(points, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(maximize):
        raise AnalysisError("points must be an n x d array with one maximize flag per column")
    signs = np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)
    oriented = values * signs  # after this, larger is better on every axis
    valid = ~np.isnan(oriented).any(axis=1)
    result = np.zeros(len(values), dtype=bool)
    candidates = oriented[valid]
    dominated = np.zeros(len(candidates), dtype=bool)
    # Chunks keep the n x n x d comparison within a few MB for large tables.
    chunk = max(1, 2_000_000 // max(1, len(candidates) * values.shape[1]))
    for start in range(0, len(candidates), chunk):
        block = candidates[start : start + chunk, None, :]
        at_least = (candidates[None, :, :] >= block).all(axis=2)
        better = (candidates[None, :, :] > block).any(axis=2)
        dominated[start : start + chunk] = (at_least & better).any(axis=1)
    result[np.flatnonzero(valid)] = ~dominated
    return result


def retention_frontier(
    table: pd.DataFrame,
    *,
    accuracy: str,
    retention: str,
    by: str,
    benchmark: str | None = None,
    lower_retention_is_better: bool = True,
) -> pd.DataFrame:
    """Mean accuracy and retention per configuration, with the Pareto-optimal set marked.

    Retention is PPL_ret by default: the perplexity of the model's outputs under the base model,
    where lower means less drift, hence ``lower_retention_is_better``.
    """
    require_columns(table, [by, *([benchmark] if benchmark else [])], what="frontier")
    acc = numeric_response(table, accuracy)
    ret = numeric_response(table, retention)
    config_codes, config_values = pd.factorize(table[by])
    if benchmark is not None:
        bench_codes, bench_values = pd.factorize(table[benchmark])
    else:
        bench_codes, bench_values = np.zeros(len(table), dtype=np.int64), pd.Index([None])
    group = bench_codes * len(config_values) + config_codes
    # Groups in first-seen order, means ignoring missing values (a run may lack retention).
    keys, first, inverse = np.unique(group, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    slot = rank[inverse.ravel()]
    size = len(keys)
    summary = pd.DataFrame(
        {
            **({benchmark: bench_values[keys[order] // len(config_values)]} if benchmark else {}),
            by: config_values[keys[order] % len(config_values)],
            accuracy: _nan_group_mean(acc, slot, size),
            retention: _nan_group_mean(ret, slot, size),
            "n": np.bincount(slot, minlength=size),
        }
    )
    maximize = [True, not lower_retention_is_better]
    mask = np.zeros(size, dtype=bool)
    points = summary[[accuracy, retention]].to_numpy(dtype=float)
    groups = keys[order] // len(config_values)
    for b in np.unique(groups):
        rows = np.flatnonzero(groups == b)
        mask[rows] = pareto_optimal(points[rows], maximize)
    summary["pareto"] = mask
    return summary


def _nan_group_mean(values: np.ndarray, slot: np.ndarray, size: int) -> np.ndarray:
    present = ~np.isnan(values)
    sums = np.bincount(slot[present], weights=values[present], minlength=size)
    counts = np.bincount(slot[present], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def curves_mean_ci(
    points: pd.DataFrame,
    *,
    value: str = "value",
    step: str = "step",
    run: str = "run_id",
    group: str | None = None,
    confidence: float = 0.95,
    interpolate: bool = False,
    min_runs: int = 1,
) -> pd.DataFrame:
    """Mean and t confidence band of a metric across runs, step by step.

    Runs are aligned on the step value. A run contributes only at steps it reached, so runs of
    different length simply leave the average (``n`` drops). With ``interpolate`` each run is
    linearly interpolated onto every step inside its own logged range (never extrapolated), for
    runs that log at different intervals. A replayed (run, step) keeps its last value.
    """
    _check_confidence(confidence)
    require_columns(points, [step, run, *([group] if group else [])], what="curve")
    data = points[[run, step, *([group] if group else [])]].copy()
    data[value] = numeric_response(points, value)
    data = data.dropna(subset=[value]).drop_duplicates([run, step], keep="last")
    if group is not None and (data.groupby(run)[group].nunique() > 1).any():
        raise AnalysisError(
            f"a run belongs to more than one {group!r}; curves need one group per run"
        )
    if interpolate:
        data = _interpolated(data, value=value, step=step, run=run, group=group)
    keys = [*([group] if group else []), step]
    summary = (
        data.groupby(keys, sort=True)[value].agg(n="count", mean="mean", sd="std").reset_index()
    )
    summary = summary[summary["n"] >= min_runs].reset_index(drop=True)
    t_crit = t_quantile(0.5 + confidence / 2, np.maximum(summary["n"].to_numpy() - 1, 1))
    half = np.where(summary["n"] >= 2, t_crit * summary["sd"] / np.sqrt(summary["n"]), np.nan)
    summary["ci_low"] = summary["mean"] - half
    summary["ci_high"] = summary["mean"] + half
    return summary


def _interpolated(
    data: pd.DataFrame, *, value: str, step: str, run: str, group: str | None
) -> pd.DataFrame:
    wide = data.pivot(index=step, columns=run, values=value).sort_index()
    # "inside" fills gaps between a run's own points and leaves its tails empty.
    filled = wide.interpolate(method="index", limit_area="inside")
    long = filled.stack().rename(value).reset_index()
    if group is not None:
        long[group] = long[run].map(data.drop_duplicates(run).set_index(run)[group])
    return long


def _gain_labels(
    available: Sequence[object] | pd.Index,
    base: object,
    configs: Sequence[object] | None,
    by: str,
    benchmark: str,
) -> list[object]:
    present = list(available)
    if base not in present:
        where = f" for benchmark {benchmark!r}" if benchmark else ""
        raise AnalysisError(f"base configuration {base!r} not found in column {by!r}{where}")
    labels = [c for c in (present if configs is None else list(configs)) if c != base]
    missing = [c for c in labels if c not in present]
    if missing:
        raise AnalysisError(f"configuration(s) not found in column {by!r}: {missing}")
    return labels


def _gains_from_cube(
    cube: SeedCube, base: object, labels: list[object], confidence: float
) -> pd.DataFrame:
    """Gains for every benchmark and configuration at once (arrays are benchmarks x configs)."""
    position = {c: i for i, c in enumerate(cube.configs)}
    values = cube.values[:, :, [position[c] for c in labels]]
    reference = cube.values[:, :, position[base]]
    missing_base = [
        b for b, col in zip(cube.benchmarks, reference.T, strict=True) if np.isnan(col).all()
    ]
    if missing_base:
        raise AnalysisError(
            f"base configuration {base!r} has no runs on benchmark(s) {missing_base}"
        )
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: handled below
        config_mean = np.nanmean(values, axis=0)
        config_var = np.nanvar(values, axis=0, ddof=1)
        base_mean = np.nanmean(reference, axis=0)
        base_var = np.nanvar(reference, axis=0, ddof=1)
        diffs = values - reference[:, :, None]
        n_pairs = (~np.isnan(diffs)).sum(axis=0)
        paired_gain = np.nanmean(diffs, axis=0)
        paired_se = np.nanstd(diffs, axis=0, ddof=1) / np.sqrt(n_pairs)
    n_config = (~np.isnan(values)).sum(axis=0)
    n_base = (~np.isnan(reference)).sum(axis=0)
    paired = n_pairs >= 2
    unpaired_half, unpaired_method = _unpaired_half(
        config_var, n_config, base_var[:, None], n_base[:, None], confidence
    )
    paired_half = t_quantile(0.5 + confidence / 2, np.maximum(n_pairs - 1, 1)) * paired_se
    gain = np.where(paired, paired_gain, config_mean - base_mean[:, None])
    half = np.where(paired, paired_half, unpaired_half)
    n_bench, n_labels = gain.shape
    return pd.DataFrame(
        {
            "benchmark": np.repeat(cube.benchmarks, n_labels),
            "config": np.tile(np.asarray(labels, dtype=object), n_bench),
            "gain": gain.ravel(),
            "ci_low": (gain - half).ravel(),
            "ci_high": (gain + half).ravel(),
            "n": np.where(paired, n_pairs, n_config).ravel(),
            "config_mean": config_mean.ravel(),
            "base_mean": np.repeat(base_mean, n_labels),
            "method": np.where(paired, "paired", unpaired_method).ravel(),
        },
        columns=GAIN_COLUMNS,
    )


def _unpaired_half(
    config_var: np.ndarray,
    config_n: np.ndarray,
    base_var: float | np.ndarray,
    base_n: int | np.ndarray,
    confidence: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Half-widths and method names for gains without pairing (broadcast over arrays)."""
    v1 = np.asarray(config_var, dtype=float)
    n1 = np.asarray(config_n, dtype=float)
    v2 = np.asarray(base_var, dtype=float)
    n2 = np.asarray(base_n, dtype=float)
    q = 0.5 + confidence / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        a = v1 / n1
        b = np.where(n2 >= 2, v2 / n2, np.nan)
        welch_df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / np.maximum(n2 - 1, 1))
        welch = np.where(a + b == 0, 0.0, t_quantile(q, welch_df) * np.sqrt(a + b))
        config_only = t_quantile(q, np.maximum(n1 - 1, 1)) * np.sqrt(a)
        base_only = t_quantile(q, np.maximum(n2 - 1, 1)) * np.sqrt(b)
    both = (n1 >= 2) & (n2 >= 2)
    config_side = (n1 >= 2) & (n2 == 1)
    base_side = (n1 == 1) & (n2 >= 2)
    half = np.select([both, config_side, base_side], [welch, config_only, base_only], np.nan)
    method = np.select([both, config_side | base_side], ["welch", "one-sample"], "none")
    return half, method.astype(object)


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise AnalysisError(f"confidence must be between 0 and 1, got {confidence}")
