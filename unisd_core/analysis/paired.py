"""Paired comparisons across seeds: does configuration B beat configuration A on the same seeds?

Runs that share a seed share data order and initialisation, so the difference per seed removes
that shared noise. For each comparison we report the paired t-test, the Wilcoxon signed-rank test
(no normality assumption) and a bootstrap percentile interval of the mean difference, and
correct p-values over a family of comparisons with Holm's step-down method.

The statistics are computed column-wise on a seeds x comparisons matrix, so a whole ablation
(every configuration against the base, on every benchmark) costs a few array operations.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln

from unisd_core.analysis.coding import numeric_response, require_columns, unique_rows
from unisd_core.analysis.distributions import t_quantile
from unisd_core.analysis.errors import AnalysisError
from unisd_core.analysis.power import minimum_detectable_effect, seeds_needed
from unisd_core.analysis.runs import seed_cube

PAIRED_COLUMNS = [
    "n",
    "mean_diff",
    "sd_diff",
    "t_stat",
    "t_pvalue",
    "t_ci_low",
    "t_ci_high",
    "wilcoxon_stat",
    "wilcoxon_pvalue",
    "ci_low",
    "ci_high",
]


@dataclass(frozen=True)
class PairedResult:
    """One paired comparison of ``a - b``; ``ci_low``/``ci_high`` are the bootstrap interval."""

    n: int
    mean_diff: float
    sd_diff: float
    t_stat: float
    t_pvalue: float
    t_ci_low: float
    t_ci_high: float
    wilcoxon_stat: float
    wilcoxon_pvalue: float
    ci_low: float
    ci_high: float


def paired_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
) -> PairedResult:
    """Compare two vectors measured on the same seeds; pairs with a NaN are dropped."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise AnalysisError(
            "paired vectors must be one-dimensional and of equal length, "
            f"got {x.shape} and {y.shape}"
        )
    d = x - y
    d = d[~np.isnan(d)]
    if len(d) < 2:
        raise AnalysisError(
            f"a paired test needs at least two seeds with both values, got {len(d)}"
        )
    row = paired_tests(d[:, None], confidence=confidence, n_boot=n_boot, seed=seed).iloc[0]
    values = {c: float(row[c]) for c in PAIRED_COLUMNS if c != "n"}
    return PairedResult(n=int(row["n"]), **values)


def paired_tests(
    differences: np.ndarray,
    *,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired statistics for every column of a complete seeds x comparisons difference matrix."""
    d = np.asarray(differences, dtype=float)
    if d.ndim != 2:
        raise AnalysisError("differences must be a seeds x comparisons matrix")
    if d.shape[0] < 2:
        raise AnalysisError(f"a paired test needs at least two seeds, got {d.shape[0]}")
    if np.isnan(d).any():
        raise AnalysisError("differences must be complete; drop seeds without both values first")
    _check_settings(confidence, n_boot)
    return pd.DataFrame(_paired_arrays(d, confidence, n_boot, seed), columns=PAIRED_COLUMNS)


def _paired_arrays(d: np.ndarray, confidence: float, n_boot: int, seed: int) -> np.ndarray:
    """The statistics of :data:`PAIRED_COLUMNS` as an m x 11 array (inputs already checked)."""
    n, m = d.shape
    mean = d.mean(axis=0)
    sd = d.std(axis=0, ddof=1)
    se = sd / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stat = mean / se
    t_pvalue = 2 * stats.t.sf(np.abs(t_stat), n - 1)
    t_crit = float(t_quantile(0.5 + confidence / 2, n - 1))

    wilcoxon_stat, wilcoxon_pvalue = _wilcoxon(d)

    # One resampling-weight matrix serves every column: the family costs one matrix product.
    weights, probabilities = _bootstrap_resamples(n, n_boot, seed)
    boot_means = d.T @ weights.T
    tail = (1 - confidence) / 2
    low, high = _weighted_quantiles(boot_means, probabilities, (tail, 1 - tail))

    return np.column_stack(
        [
            np.full(m, n),
            mean,
            sd,
            t_stat,
            t_pvalue,
            mean - t_crit * se,
            mean + t_crit * se,
            wilcoxon_stat,
            wilcoxon_pvalue,
            low,
            high,
        ]
    )


def _wilcoxon(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Wilcoxon signed-rank statistic and p-value per column, as scipy computes them.

    Columns without zeros or tied magnitudes (the usual case) use the exact null distribution,
    vectorised; the others go through ``scipy.stats.wilcoxon`` one by one. Calling scipy column
    by column matters: on a matrix it picks one method for all columns from ties anywhere.
    """
    n, m = d.shape
    magnitude = np.abs(d)
    ordered = np.sort(magnitude, axis=0)
    clean = ~((d == 0).any(axis=0) | (np.diff(ordered, axis=0) == 0).any(axis=0))
    statistic = np.full(m, np.nan)
    pvalue = np.full(m, np.nan)
    if clean.any() and n <= 50:
        block = d[:, clean]
        ranks = np.argsort(np.argsort(np.abs(block), axis=0), axis=0) + 1
        r_plus = (ranks * (block > 0)).sum(axis=0)
        r_minus = n * (n + 1) // 2 - r_plus
        cdf = _signed_rank_cdf(n)
        below = cdf[r_plus]
        above = 1.0 - np.where(r_plus > 0, cdf[np.maximum(r_plus - 1, 0)], 0.0)
        statistic[clean] = np.minimum(r_plus, r_minus)
        pvalue[clean] = np.clip(2 * np.minimum(below, above), 0.0, 1.0)
    else:
        clean[:] = False
    for j in np.flatnonzero(~clean):
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            # All-zero columns make scipy warn (no non-zero differences to rank); it still
            # answers p = 1, the right verdict for "no difference on any seed".
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            result = stats.wilcoxon(d[:, j])
        statistic[j] = float(result.statistic)
        pvalue[j] = float(result.pvalue)
    return statistic, pvalue


@functools.lru_cache(maxsize=64)
def _signed_rank_cdf(n: int) -> np.ndarray:
    """P(W+ <= k) for k = 0 .. n(n+1)/2 under the null (each sign equally likely)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        # Either rank ``rank`` is positive (adds it to W+) or not: subset-sum counting.
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    cdf = np.cumsum(counts) / 2.0**n
    cdf.setflags(write=False)
    return cdf


@functools.lru_cache(maxsize=16)
def _bootstrap_resamples(n: int, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Resamples of ``n`` seeds as weights (draw counts / n) with their probabilities.

    When the number of distinct resamples, C(2n-1, n), is at most ``n_boot`` (n <= 8 for the
    default 10,000) we enumerate them with their exact multinomial probabilities: the interval
    is then the exact bootstrap interval, free of Monte Carlo noise. Otherwise ``n_boot`` random
    resamples from ``seed``. Cached because every benchmark of an ablation has the same seeds.
    """
    if math.comb(2 * n - 1, n) <= n_boot:
        counts = np.array(
            [
                np.bincount(combo, minlength=n)
                for combo in itertools.combinations_with_replacement(range(n), n)
            ]
        )
        log_p = math.lgamma(n + 1) - gammaln(counts + 1).sum(axis=1) - n * math.log(n)
        probabilities = np.exp(log_p)
    else:
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, n, size=(n_boot, n))
        flat = (draws + n * np.arange(n_boot)[:, None]).ravel()
        counts = np.bincount(flat, minlength=n * n_boot).reshape(n_boot, n)
        probabilities = np.full(n_boot, 1.0 / n_boot)
    weights = counts / n
    weights.setflags(write=False)
    probabilities.setflags(write=False)
    return weights, probabilities


def _weighted_quantiles(
    values: np.ndarray, probabilities: np.ndarray, quantiles: Sequence[float]
) -> list[np.ndarray]:
    """Per row of ``values``: the smallest value whose cumulative probability reaches q."""
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    cumulative = np.cumsum(probabilities[order], axis=1)
    rows = np.arange(len(values))
    result = []
    for q in quantiles:
        # The tolerance keeps q = 0.025 from missing an atom whose cumulative sum rounds low.
        index = np.argmax(cumulative >= q - 1e-12, axis=1)
        result.append(ordered[rows, index])
    return result


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values; NaNs stay NaN and do not count toward the family size."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    # Step-down: an adjusted p-value can never be smaller than the one before it.
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def compare_configurations(
    table: pd.DataFrame,
    *,
    response: str,
    by: str,
    config: object,
    reference: object,
    seed: str = "seed",
    confidence: float = 0.95,
    n_boot: int = 10_000,
    boot_seed: int = 0,
) -> PairedResult:
    """Paired comparison ``config - reference`` of the rows labelled so in column ``by``."""
    wide = _wide(table, response=response, by=by, seed=seed)
    for label, role in ((config, "configuration"), (reference, "reference")):
        if label not in wide.columns:
            raise AnalysisError(
                f"{role} {label!r} not found in column {by!r} (have: {list(wide.columns)})"
            )
    a = wide[config].to_numpy(dtype=float)
    b = wide[reference].to_numpy(dtype=float)
    both = ~(np.isnan(a) | np.isnan(b))
    if both.sum() < 2:
        raise AnalysisError(
            f"a paired test needs at least two seeds run with both {config!r} and {reference!r}; "
            f"{config!r} has seeds {_seeds_of(wide, config)}, {reference!r} has seeds "
            f"{_seeds_of(wide, reference)}"
        )
    return paired_test(a, b, confidence=confidence, n_boot=n_boot, seed=boot_seed)


def paired_comparisons(
    table: pd.DataFrame,
    *,
    response: str,
    by: str,
    reference: object,
    seed: str = "seed",
    benchmark: str | None = None,
    overall: bool = True,
    candidates: Sequence[object] | None = None,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    boot_seed: int = 0,
) -> pd.DataFrame:
    """Every configuration of ``by`` against ``reference``, per benchmark (and overall).

    The Holm family is the set of comparisons within one benchmark: each benchmark answers its
    own question ("which components help on MBPP?"). Configurations with fewer than two seeds
    shared with the reference get a row with NaN statistics and a note instead of failing the
    whole family.
    """
    require_columns(table, [response], what="response")
    _check_settings(confidence, n_boot)
    cube = seed_cube(
        table, response=response, by=by, seed=seed, benchmark=benchmark, overall=overall
    )
    if reference not in cube.configs:
        raise AnalysisError(
            f"reference {reference!r} not found in column {by!r} (have: {cube.configs})"
        )
    labels = [c for c in cube.configs if c != reference] if candidates is None else list(candidates)
    missing = [c for c in labels if c not in cube.configs]
    if missing:
        raise AnalysisError(f"configuration(s) not found in column {by!r}: {missing}")
    position = {c: i for i, c in enumerate(cube.configs)}
    # Seeds x (benchmark, configuration) differences: the whole family in one matrix.
    diffs = (
        cube.values[:, :, [position[c] for c in labels]] - cube.values[:, :, [position[reference]]]
    )
    n_bench, n_labels = diffs.shape[1], diffs.shape[2]
    values = _paired_columns(diffs.reshape(len(cube.seeds), -1), confidence, n_boot, boot_seed)
    if (values[:, 0] < 2).all():
        raise AnalysisError(
            f"no configuration shares two or more seeds with {reference!r}; paired tests need "
            "each compared configuration run with at least two of the reference's seeds"
        )
    result = pd.DataFrame(values, columns=PAIRED_COLUMNS)
    result["n"] = result["n"].astype(int)
    result.insert(0, "benchmark", np.repeat(cube.benchmarks, n_labels))
    result.insert(1, "config", np.tile(np.asarray(labels, dtype=object), n_bench))
    result.insert(2, "reference", [reference] * len(result))
    result["note"] = np.where(
        values[:, 0] < 2, f"fewer than two seeds shared with {reference!r}", ""
    )
    # Holm's family: the comparisons within one benchmark.
    for column in ("t_pvalue", "wilcoxon_pvalue"):
        p_values = values[:, PAIRED_COLUMNS.index(column)].reshape(n_bench, n_labels)
        result[f"{column}_holm"] = np.concatenate([holm(row) for row in p_values])
    return result


def _check_settings(confidence: float, n_boot: int) -> None:
    if not 0 < confidence < 1:
        raise AnalysisError(f"confidence must be between 0 and 1, got {confidence}")
    if n_boot < 100:
        raise AnalysisError(f"n_boot must be at least 100 for a usable interval, got {n_boot}")


def power_summary(
    comparisons: pd.DataFrame, *, alpha: float = 0.05, power: float = 0.8
) -> pd.DataFrame:
    """Per benchmark: seeds used, pooled sd of paired differences and the minimum detectable effect.

    The pooled sd is the root mean of the per-comparison variances; ``mde`` is the smallest true
    difference a paired t-test at ``alpha`` detects with probability ``power`` at the seeds used.
    """
    require_columns(comparisons, ["benchmark", "n", "sd_diff"], what="comparison")
    codes, names = pd.factorize(comparisons["benchmark"])
    n_all = comparisons["n"].to_numpy(dtype=float)
    sd_all = comparisons["sd_diff"].to_numpy(dtype=float)
    rows = []
    for code, name in enumerate(names):
        usable = (codes == code) & (n_all >= 2) & ~np.isnan(sd_all)
        if not usable.any():
            continue
        n = int(np.median(n_all[usable]))
        sd = float(np.sqrt(np.mean(sd_all[usable] ** 2)))
        mde = minimum_detectable_effect(sd, n, alpha=alpha, power=power)
        half = seeds_needed(mde / 2, sd, alpha=alpha, power=power) if mde > 0 else n
        rows.append((name, n, sd, mde, half, alpha, power))
    return pd.DataFrame(
        rows,
        columns=["benchmark", "n_seeds", "sd_diff", "mde", "seeds_for_half_mde", "alpha", "power"],
    )


# ----------------------------------------------------------------------------- helpers


def _wide(frame: pd.DataFrame, *, response: str, by: str, seed: str) -> pd.DataFrame:
    require_columns(frame, [response, by, seed], what="comparison")
    data = frame[[by, seed]].copy()
    data[response] = numeric_response(frame, response)
    if data[seed].isna().any():
        raise AnalysisError(f"seed column {seed!r} has missing values; pairing needs every seed")
    duplicated = data.duplicated([by, seed])
    if duplicated.any():
        row = data.loc[duplicated].iloc[0]
        raise AnalysisError(
            f"configuration {row[by]!r} has several rows for seed {row[seed]!r}; "
            "a paired test needs one value per configuration and seed (filter to one benchmark)"
        )
    return data.pivot(index=seed, columns=by, values=response)


def _seeds_of(wide: pd.DataFrame, label: object) -> list[object]:
    return [s for s, v in wide[label].items() if not pd.isna(v)]


def _paired_columns(
    diffs: np.ndarray, confidence: float, n_boot: int, boot_seed: int
) -> np.ndarray:
    """Rows of :data:`PAIRED_COLUMNS` for each column of a seeds x comparisons matrix with NaNs."""
    values = np.full((diffs.shape[1], len(PAIRED_COLUMNS)), np.nan)
    present = ~np.isnan(diffs)
    # Columns with the same seeds present are tested together in one vectorised call.
    patterns, which = unique_rows(present.T)
    for p, pattern in enumerate(patterns):
        cols = np.flatnonzero(which == p)
        rows = np.flatnonzero(pattern)
        if len(rows) < 2:
            values[cols, 0] = len(rows)
            continue
        values[cols] = _paired_arrays(diffs[np.ix_(rows, cols)], confidence, n_boot, boot_seed)
    return values
