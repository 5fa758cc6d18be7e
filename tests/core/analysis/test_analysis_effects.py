"""Factorial effects: known answers from a synthetic linear model, coverage, aliasing, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.core.analysis.analysis_synthetic import (
    COMPONENTS,
    linear_model_table,
    true_effect,
)
from unisd_core.analysis import (
    AnalysisError,
    effects_by_benchmark,
    estimate_effects,
    factorial_effects,
    full_factorial,
    paper_layout,
)


def test_public_api_columns_and_term_order() -> None:
    table = linear_model_table(np.random.default_rng(1), factors=["a", "b", "c"])
    effects = factorial_effects(table, factors=["a", "b", "c"], response="accuracy")
    assert list(effects.columns) == ["term", "estimate", "ci_low", "ci_high", "aliased_with"]
    assert list(effects["term"]) == ["a", "b", "c", "a:b", "a:c", "b:c"]
    assert (effects["aliased_with"] == "").all()


def test_balanced_effect_is_difference_of_means() -> None:
    table = linear_model_table(np.random.default_rng(2), seeds=2)
    effects = factorial_effects(table, factors=COMPONENTS, response="accuracy")
    for factor in COMPONENTS:
        by_level = table.groupby(factor)["accuracy"].mean()
        estimate = effects.set_index("term").loc[factor, "estimate"]
        assert estimate == pytest.approx(by_level[True] - by_level[False], abs=1e-10)
    a, b = np.where(table["agreement"], 1, -1), np.where(table["ema"], 1, -1)
    product = pd.Series(a * b)
    by_product = table["accuracy"].groupby(product).mean()
    interaction = effects.set_index("term").loc["agreement:ema", "estimate"]
    assert interaction == pytest.approx(by_product[1] - by_product[-1], abs=1e-10)


def test_known_answer_estimates_lie_in_their_intervals() -> None:
    table = linear_model_table(np.random.default_rng(3), seeds=4, noise=0.5, seed_sd=2.0)
    effects = factorial_effects(table, factors=COMPONENTS, response="accuracy", seed="seed")
    assert effects["ci_low"].notna().all()
    truth = effects["term"].map(true_effect)
    inside = (effects["ci_low"] <= truth) & (truth <= effects["ci_high"])
    # 15 intervals at 95%: one or two may miss by chance (coverage is tested separately) ...
    assert inside.sum() >= 13
    # ... but at 99.9% every true effect must be inside.
    wide = factorial_effects(
        table, factors=COMPONENTS, response="accuracy", seed="seed", confidence=0.999
    )
    assert ((wide["ci_low"] <= truth) & (truth <= wide["ci_high"])).all()
    # The strong effects are found, the null ones are small.
    by_term = effects.set_index("term")["estimate"]
    assert by_term["agreement"] == pytest.approx(3.0, abs=0.4)
    assert by_term["agreement:ema"] == pytest.approx(1.2, abs=0.4)
    assert "note" in effects.attrs and "seeds as blocks" in effects.attrs["note"]


def test_seed_blocks_remove_shared_seed_noise() -> None:
    table = linear_model_table(np.random.default_rng(4), seeds=4, noise=0.3, seed_sd=5.0)
    blocked = estimate_effects(table, factors=COMPONENTS, response="accuracy", seed="seed")
    plain = estimate_effects(table, factors=COMPONENTS, response="accuracy")
    # Same balanced contrasts, but the seed shifts no longer count as noise.
    assert np.allclose(blocked.table["estimate"], plain.table["estimate"])
    assert blocked.sigma < plain.sigma / 3
    assert blocked.residual_df == plain.residual_df - 3


def test_confidence_intervals_cover_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(20261127)
    factors = ["agreement", "ema", "clipping"]
    design = full_factorial(factors, seeds=3).runs()
    simulations = 400
    # Each simulated ablation is one "benchmark" of a single table, so one call analyses all.
    tables = [
        linear_model_table(rng, factors=factors, design=design, noise=1.0, seed_sd=1.0).assign(
            benchmark=f"sim{i:03d}"
        )
        for i in range(simulations)
    ]
    effects = effects_by_benchmark(
        pd.concat(tables, ignore_index=True),
        factors=factors,
        response="accuracy",
        seed="seed",
        overall=False,
    )
    assert effects["benchmark"].nunique() == simulations
    truth = effects["term"].map(true_effect)
    effects["covered"] = (effects["ci_low"] <= truth) & (truth <= effects["ci_high"])
    rates = effects.groupby("term")["covered"].mean()
    assert rates.between(0.90, 0.98).all(), rates.to_dict()
    assert 0.93 <= rates.mean() <= 0.97


def test_single_fit_matches_the_per_benchmark_path() -> None:
    table = linear_model_table(np.random.default_rng(15), seeds=3, seed_sd=1.0)
    shuffled = table.sample(frac=1.0, random_state=0).assign(benchmark="only")
    single = estimate_effects(table, factors=COMPONENTS, response="accuracy", seed="seed")
    batch = effects_by_benchmark(
        shuffled, factors=COMPONENTS, response="accuracy", seed="seed", overall=False
    )
    for column in ("estimate", "ci_low", "ci_high", "p_value"):
        assert np.allclose(single.table[column], batch[column]), column
    assert list(single.table["aliased_with"]) == list(batch["aliased_with"])


def test_without_replicates_intervals_are_unavailable_not_invented() -> None:
    table = linear_model_table(np.random.default_rng(5), seeds=1)
    effects = factorial_effects(table, factors=COMPONENTS, response="accuracy", seed="seed")
    assert effects["estimate"].notna().all()
    assert effects["ci_low"].isna().all() and effects["ci_high"].isna().all()
    assert "unavailable" in effects.attrs["note"]
    assert effects.attrs["residual_df"] == 0


def test_two_level_columns_of_any_type() -> None:
    table = linear_model_table(np.random.default_rng(6), factors=["agreement", "ema"], seeds=2)
    recoded = table.assign(
        agreement=np.where(table["agreement"], "on", "off"),
        ema=np.where(table["ema"], 0.01, 0.001),
    )
    original = factorial_effects(table, factors=["agreement", "ema"], response="accuracy")
    again = factorial_effects(recoded, factors=["agreement", "ema"], response="accuracy")
    assert np.allclose(original["estimate"], again["estimate"])
    assert again.attrs["levels"] == {"agreement": ("off", "on"), "ema": (0.001, 0.01)}


def test_missing_responses_are_left_out_with_a_note() -> None:
    table = linear_model_table(np.random.default_rng(7), seeds=3)
    table.loc[[0, 5], "accuracy"] = np.nan
    result = estimate_effects(table, factors=COMPONENTS, response="accuracy", seed="seed")
    assert result.n_runs == len(table) - 2
    assert result.n_dropped == 2
    assert "2 run(s) without a value" in result.note


def test_unbalanced_tables_still_estimate_adjusted_effects() -> None:
    rng = np.random.default_rng(8)
    table = linear_model_table(rng, seeds=3, noise=0.2)
    dropped = table.drop(index=rng.choice(len(table), size=20, replace=False))
    effects = factorial_effects(dropped, factors=COMPONENTS, response="accuracy", seed="seed")
    for row in effects.itertuples():
        assert (
            row.ci_low <= true_effect(row.term) + 0.25
            and true_effect(row.term) - 0.25 <= row.ci_high
        )


def test_fractional_aliases_are_labelled_and_estimates_are_sums() -> None:
    # I = A B C E: the A:B column equals the C:E column, so the estimate is A:B + C:E.
    runs = full_factorial(["A", "B", "C", "D"], seeds=2).runs()
    coded = {f: np.where(runs[f], 1.0, -1.0) for f in "ABCD"}
    coded["E"] = coded["A"] * coded["B"] * coded["C"]
    runs["E"] = coded["E"] > 0
    runs["y"] = 2.0 * coded["A"] * coded["B"] + 0.5 * coded["C"] * coded["E"]
    effects = factorial_effects(runs, factors=list("ABCDE"), response="y").set_index("term")
    assert effects.loc["A:B", "aliased_with"] == "C:E"
    assert effects.loc["C:E", "aliased_with"] == "A:B"
    assert np.isnan(effects.loc["C:E", "estimate"])
    assert effects.loc["A:B", "estimate"] == pytest.approx(2 * (2.0 + 0.5))
    assert effects.loc["A", "aliased_with"] == ""
    assert effects.loc["A:D", "aliased_with"] == ""


def test_paper_layout_effects_are_flagged_as_aliased() -> None:
    factors = ["agreement", "ema", "clipping"]
    runs = paper_layout(factors, seeds=3).runs()
    runs["y"] = np.random.default_rng(9).normal(size=len(runs))
    effects = factorial_effects(runs, factors=factors, response="y", seed="seed")
    # Five configurations cannot separate three mains and three interactions: every term
    # either carries aliases or is carried by another.
    assert (effects["aliased_with"] != "").all()
    assert effects["estimate"].notna().sum() == 4


def test_per_benchmark_and_overall() -> None:
    rng = np.random.default_rng(10)
    pieces = []
    for shift, name in enumerate(["mbpp", "scienceqa", "cose"]):
        table = linear_model_table(rng, factors=["agreement", "ema"], seeds=3)
        table["accuracy"] += 10 * shift
        table["benchmark"] = name
        pieces.append(table)
    table = pd.concat(pieces, ignore_index=True)
    effects = effects_by_benchmark(
        table, factors=["agreement", "ema"], response="accuracy", seed="seed"
    )
    assert list(pd.unique(effects["benchmark"])) == ["cose", "mbpp", "scienceqa", "overall"]
    overall = effects[effects["benchmark"] == "overall"].set_index("term")
    per_benchmark = effects[effects["benchmark"] != "overall"].groupby("term")["estimate"].mean()
    # Balanced: the effect on the mean over benchmarks is the mean of the per-benchmark effects.
    assert np.allclose(overall.loc[per_benchmark.index, "estimate"], per_benchmark)
    assert (overall["n"] == 12).all()
    assert (effects.loc[effects["benchmark"] == "mbpp", "n"] == 12).all()

    # A run without one benchmark leaves the overall score (and says so).
    partial = table.drop(index=table.index[(table["benchmark"] == "cose")][:1])
    again = effects_by_benchmark(
        partial, factors=["agreement", "ema"], response="accuracy", seed="seed"
    )
    note = again.loc[again["benchmark"] == "overall", "note"].iloc[0]
    assert "1 run(s) missing a benchmark" in note


def test_per_benchmark_with_an_explicit_run_column() -> None:
    table = linear_model_table(np.random.default_rng(11), factors=["agreement", "ema"], seeds=2)
    table["run_id"] = range(len(table))
    both = pd.concat([table.assign(benchmark="x"), table.assign(benchmark="y")], ignore_index=True)
    effects = effects_by_benchmark(
        both, factors=["agreement", "ema"], response="accuracy", run=["run_id"]
    )
    x = effects[effects["benchmark"] == "x"].set_index("term")["estimate"]
    overall = effects[effects["benchmark"] == "overall"].set_index("term")["estimate"]
    assert np.allclose(x, overall)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.assign(ema=True), "'ema' has only one level"),
        (lambda t: t.assign(ema=np.arange(len(t)) % 3), "'ema' has 3 levels"),
        (lambda t: t.assign(ema=t["agreement"]), "'ema' is confounded with agreement"),
        (lambda t: t.assign(ema=~t["agreement"]), "'ema' is confounded with agreement"),
        (lambda t: t.assign(accuracy="high"), "non-numeric"),
        (lambda t: t.drop(columns="ema"), "factor column\\(s\\) not in the table: ema"),
        (lambda t: t.assign(ema=None), "'ema' has .* missing"),
    ],
)
def test_unusable_inputs_raise_naming_the_problem(change: object, message: str) -> None:
    table = linear_model_table(np.random.default_rng(12), factors=["agreement", "ema"], seeds=2)
    broken = change(table)  # type: ignore[operator]
    with pytest.raises(AnalysisError, match=message):
        factorial_effects(broken, factors=["agreement", "ema"], response="accuracy")
    assert issubclass(AnalysisError, ValueError)


def test_factor_confounded_with_seed_is_named() -> None:
    table = linear_model_table(np.random.default_rng(13), factors=["agreement", "ema"], seeds=2)
    table["seed"] = np.where(table["ema"], 1, 0)
    with pytest.raises(AnalysisError, match="confounded with seed"):
        factorial_effects(table, factors=["agreement", "ema"], response="accuracy", seed="seed")


def test_one_level_on_a_single_benchmark_is_named() -> None:
    table = linear_model_table(np.random.default_rng(14), factors=["agreement", "ema"], seeds=2)
    table["benchmark"] = np.where(table["ema"], "a", "b")
    table = pd.concat([table, table.assign(benchmark="c")], ignore_index=True)
    with pytest.raises(AnalysisError, match="on benchmark 'a'"):
        effects_by_benchmark(table, factors=["agreement", "ema"], response="accuracy")
