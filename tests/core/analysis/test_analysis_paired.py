"""Paired tests across seeds agree with scipy; Holm; power and seeds needed."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from unisd_core.analysis import (
    AnalysisError,
    compare_configurations,
    holm,
    minimum_detectable_effect,
    paired_comparisons,
    paired_power,
    paired_test,
    paired_tests,
    power_summary,
    seeds_needed,
)


@pytest.mark.parametrize("n", [5, 8, 12, 30, 50])
def test_paired_t_and_wilcoxon_agree_with_scipy(n: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.normal(70, 2, size=n)
    b = a - 0.8 + rng.normal(0, 1, size=n)
    result = paired_test(a, b)
    t = stats.ttest_rel(a, b)
    w = stats.wilcoxon(a, b)
    assert result.n == n
    assert result.mean_diff == pytest.approx(np.mean(a - b))
    assert result.t_stat == pytest.approx(t.statistic)
    assert result.t_pvalue == pytest.approx(t.pvalue)
    low, high = t.confidence_interval(0.95)
    assert (result.t_ci_low, result.t_ci_high) == pytest.approx((low, high))
    assert result.wilcoxon_stat == pytest.approx(w.statistic)
    assert result.wilcoxon_pvalue == pytest.approx(w.pvalue)


@pytest.mark.parametrize(
    "d",
    [
        [0.5, -0.25, 1.0, 0.5, 2.0, 1.5],  # tied magnitudes
        [0.0, 0.3, 1.2, -0.4, 0.9, 2.2, 1.1],  # a zero difference
        [0.0, 0.0, 0.0, 0.0],  # no difference at all
        [0.01 * k for k in range(1, 40)],  # larger n, all positive
        [-1.0, 2.0],  # the smallest sample
    ],
)
def test_wilcoxon_matches_scipy_with_ties_and_zeros(d: list[float]) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = stats.wilcoxon(d)
    result = paired_test(np.array(d), np.zeros(len(d)))
    assert result.wilcoxon_stat == pytest.approx(expected.statistic)
    assert result.wilcoxon_pvalue == pytest.approx(expected.pvalue)


def test_vectorised_family_matches_one_at_a_time() -> None:
    rng = np.random.default_rng(1)
    diffs = rng.normal(0.5, 1.0, size=(6, 9))
    family = paired_tests(diffs)
    for j in range(diffs.shape[1]):
        single = paired_test(diffs[:, j], np.zeros(6))
        assert family.loc[j, "t_pvalue"] == pytest.approx(single.t_pvalue)
        assert family.loc[j, "wilcoxon_pvalue"] == pytest.approx(single.wilcoxon_pvalue)
        assert family.loc[j, "ci_low"] == pytest.approx(single.ci_low)


def test_bootstrap_interval_agrees_with_scipy() -> None:
    rng = np.random.default_rng(2)
    d = rng.normal(1.0, 2.0, size=15)  # 15 seeds: Monte Carlo resampling
    ours = paired_test(d, np.zeros_like(d), n_boot=20_000, seed=3)
    theirs = stats.bootstrap(
        (d,), np.mean, n_resamples=20_000, method="percentile", rng=np.random.default_rng(4)
    ).confidence_interval
    spread = d.std(ddof=1) / math.sqrt(len(d))
    assert ours.ci_low == pytest.approx(theirs.low, abs=0.05 * spread)
    assert ours.ci_high == pytest.approx(theirs.high, abs=0.05 * spread)


def test_small_seed_counts_use_the_exact_bootstrap_distribution() -> None:
    d = np.array([0.3, -0.1, 0.9, 1.4])
    n = len(d)
    # Brute force: all n^n equally likely ordered resamples.
    means = np.sort([np.mean(d[list(idx)]) for idx in itertools.product(range(n), repeat=n)])
    cumulative = np.arange(1, len(means) + 1) / len(means)
    expected_low = means[np.argmax(cumulative >= 0.025 - 1e-12)]
    expected_high = means[np.argmax(cumulative >= 0.975 - 1e-12)]
    result = paired_test(d, np.zeros(n), seed=123)
    assert result.ci_low == pytest.approx(expected_low)
    assert result.ci_high == pytest.approx(expected_high)
    # Exact means no dependence on the random seed.
    assert paired_test(d, np.zeros(n), seed=999).ci_low == result.ci_low


def test_holm_matches_its_definition() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan, 0.5])
    adjusted = holm(p)
    valid = [0.005, 0.01, 0.03, 0.04, 0.5]  # sorted, m = 5
    expected_sorted = np.minimum(
        np.maximum.accumulate([(5 - i) * v for i, v in enumerate(valid)]), 1
    )
    expected = dict(zip(valid, expected_sorted, strict=True))
    for raw, adj in zip(p, adjusted, strict=True):
        if np.isnan(raw):
            assert np.isnan(adj)
        else:
            assert adj == pytest.approx(expected[raw])
    assert np.all(adjusted[~np.isnan(p)] >= p[~np.isnan(p)])
    assert holm([]).shape == (0,)


def _ablation(rng: np.random.Generator, seeds: int = 5) -> pd.DataFrame:
    rows = []
    seed_shift = rng.normal(0, 2, size=seeds)
    for benchmark in ("mbpp", "scienceqa"):
        for config, gain in (("base", 0.0), ("agree", 2.0), ("ema", 0.0), ("clip", 0.5)):
            for s in range(seeds):
                value = 60 + gain + seed_shift[s] + rng.normal(0, 0.3)
                rows.append({"benchmark": benchmark, "config": config, "seed": s, "acc": value})
    return pd.DataFrame(rows)


def test_paired_comparisons_against_the_base() -> None:
    table = _ablation(np.random.default_rng(5))
    result = paired_comparisons(
        table, response="acc", by="config", reference="base", benchmark="benchmark"
    )
    assert list(pd.unique(result["benchmark"])) == ["mbpp", "scienceqa", "overall"]
    assert set(result["config"]) == {"agree", "ema", "clip"}
    mbpp = result[result["benchmark"] == "mbpp"].set_index("config")
    wide = table[table["benchmark"] == "mbpp"].pivot(index="seed", columns="config", values="acc")
    t = stats.ttest_rel(wide["agree"], wide["base"])
    assert mbpp.loc["agree", "t_pvalue"] == pytest.approx(t.pvalue)
    assert mbpp.loc["agree", "t_pvalue_holm"] == pytest.approx(
        holm(mbpp["t_pvalue"].to_numpy())[list(mbpp.index).index("agree")]
    )
    # Shared seed noise cancels in the pairing: the real gain is clearly detected.
    assert mbpp.loc["agree", "t_pvalue_holm"] < 0.01
    assert mbpp.loc["agree", "ci_low"] > 1.0
    overall = result[result["benchmark"] == "overall"].set_index("config")
    assert overall.loc["agree", "mean_diff"] == pytest.approx(2.0, abs=0.5)


def test_comparison_with_missing_seeds_is_reported_not_fatal() -> None:
    table = _ablation(np.random.default_rng(6))
    table = table[~((table["config"] == "clip") & (table["seed"] > 0))]
    result = paired_comparisons(
        table, response="acc", by="config", reference="base", benchmark="benchmark", overall=False
    )
    clip = result[result["config"] == "clip"]
    assert (clip["n"] == 1).all()
    assert clip["t_pvalue"].isna().all()
    assert clip["note"].str.contains("fewer than two seeds").all()


def test_fewer_than_two_seeds_is_an_error_naming_the_seeds() -> None:
    table = _ablation(np.random.default_rng(7))
    one_benchmark = table[table["benchmark"] == "mbpp"]
    result = compare_configurations(
        one_benchmark, response="acc", by="config", config="agree", reference="base"
    )
    assert result.n == 5
    with pytest.raises(AnalysisError, match=r"at least two seeds.*'agree' has seeds \[0\]"):
        compare_configurations(
            one_benchmark[one_benchmark["seed"] == 0],
            response="acc",
            by="config",
            config="agree",
            reference="base",
        )
    with pytest.raises(AnalysisError, match="several rows for seed"):
        compare_configurations(table, response="acc", by="config", config="agree", reference="base")
    with pytest.raises(AnalysisError, match="not found"):
        compare_configurations(
            one_benchmark, response="acc", by="config", config="nope", reference="base"
        )
    with pytest.raises(AnalysisError, match="at least two seeds"):
        paired_test([1.0], [2.0])


def test_power_and_minimum_detectable_effect_are_inverse() -> None:
    mde = minimum_detectable_effect(1.5, 5)
    assert paired_power(mde, 1.5, 5) == pytest.approx(0.8, abs=1e-6)
    assert minimum_detectable_effect(3.0, 5) == pytest.approx(2 * mde)
    assert minimum_detectable_effect(1.5, 20) < mde
    # Textbook value: d = 0.5 at 80% power and alpha 0.05 needs 34 pairs.
    assert seeds_needed(0.5, 1.0) == 34
    assert seeds_needed(-0.5, 1.0) == 34
    assert paired_power(0.5, 1.0, 34) >= 0.8 > paired_power(0.5, 1.0, 33)
    with pytest.raises(AnalysisError, match="zero"):
        seeds_needed(0.0, 1.0)
    with pytest.raises(AnalysisError, match="at least two seeds"):
        minimum_detectable_effect(1.0, 1)


def test_power_matches_simulation() -> None:
    rng = np.random.default_rng(8)
    n, effect, sd = 6, 1.0, 1.2
    d = rng.normal(effect, sd, size=(4000, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    rejected = np.mean(np.abs(t) > stats.t.ppf(0.975, n - 1))
    assert paired_power(effect, sd, n) == pytest.approx(rejected, abs=0.03)


def test_power_summary_per_benchmark() -> None:
    table = _ablation(np.random.default_rng(9))
    result = paired_comparisons(
        table, response="acc", by="config", reference="base", benchmark="benchmark"
    )
    summary = power_summary(result)
    assert list(summary["benchmark"]) == ["mbpp", "scienceqa", "overall"]
    assert (summary["n_seeds"] == 5).all()
    assert (summary["seeds_for_half_mde"] > 5).all()
    row = summary.iloc[0]
    assert paired_power(row["mde"], row["sd_diff"], 5) == pytest.approx(0.8, abs=1e-6)
