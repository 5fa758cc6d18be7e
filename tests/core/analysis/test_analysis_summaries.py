"""Gains over the base (the paper's layout), the Pareto frontier and mean +/- CI curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from unisd_core.analysis import (
    AnalysisError,
    as_heatmap,
    config_labels,
    curves_mean_ci,
    gain_over_base,
    paper_layout,
    pareto_optimal,
    retention_frontier,
)

COMPONENTS = ["agreement", "ema", "clipping"]

# The paper's layout by hand: (config, benchmark) -> accuracy on seeds 1 and 2.
PAPER_TABLE = {
    ("base", "mbpp"): (50, 52),
    ("base", "sciq"): (70, 72),
    ("agreement", "mbpp"): (53, 54),
    ("agreement", "sciq"): (71, 74),
    ("ema", "mbpp"): (50, 53),
    ("ema", "sciq"): (69, 71),
    ("clipping", "mbpp"): (51, 52),
    ("clipping", "sciq"): (70, 73),
    ("unisd_star", "mbpp"): (56, 57),
    ("unisd_star", "sciq"): (75, 76),
}


def paper_table() -> pd.DataFrame:
    flags = paper_layout(COMPONENTS).configs.set_index("config")
    rows = []
    for (config, benchmark), values in PAPER_TABLE.items():
        for seed, value in zip((1, 2), values, strict=True):
            rows.append(
                {"config": config, "benchmark": benchmark, "seed": seed, "accuracy": value}
                | {c: bool(flags.loc[config, c]) for c in COMPONENTS}
            )
    return pd.DataFrame(rows)


def test_config_labels_follow_the_paper_layout() -> None:
    table = paper_table()
    labels = config_labels(table, COMPONENTS, all_label="unisd_star")
    assert (labels == table["config"]).all()
    assert set(config_labels(table, COMPONENTS)) >= {"base", "agreement+ema+clipping"}


def test_gains_on_the_hand_built_paper_table() -> None:
    gains = gain_over_base(paper_table(), response="accuracy", by="config", base="base")
    cell = gains.set_index(["benchmark", "config"])
    expected = {
        ("mbpp", "agreement"): 2.5,
        ("mbpp", "ema"): 0.5,
        ("mbpp", "clipping"): 0.5,
        ("mbpp", "unisd_star"): 5.5,
        ("sciq", "agreement"): 1.5,
        ("sciq", "ema"): -1.0,
        ("sciq", "clipping"): 0.5,
        ("sciq", "unisd_star"): 4.5,
        ("overall", "agreement"): 2.0,
        ("overall", "ema"): -0.25,
        ("overall", "clipping"): 0.5,
        ("overall", "unisd_star"): 5.0,
    }
    for key, value in expected.items():
        assert cell.loc[key, "gain"] == pytest.approx(value), key
    assert (gains["method"] == "paired").all()
    # Paired t interval with one degree of freedom: differences (3, 2).
    half = stats.t.ppf(0.975, 1) * 0.5
    assert cell.loc[("mbpp", "agreement"), "ci_low"] == pytest.approx(2.5 - half)
    assert cell.loc[("mbpp", "agreement"), "ci_high"] == pytest.approx(2.5 + half)
    # Identical differences on both seeds: a zero-width interval, not an invented one.
    assert cell.loc[("sciq", "ema"), "ci_low"] == pytest.approx(-1.0)
    assert cell.loc[("mbpp", "agreement"), "config_mean"] == pytest.approx(53.5)
    assert cell.loc[("mbpp", "agreement"), "base_mean"] == pytest.approx(51.0)

    heat = as_heatmap(gains)
    assert list(heat.index) == ["agreement", "ema", "clipping", "unisd_star"]
    assert list(heat.columns) == ["mbpp", "sciq", "overall"]
    assert heat.loc["unisd_star", "overall"] == pytest.approx(5.0)


def test_gains_without_pairing_use_welch_or_one_sample() -> None:
    table = paper_table()
    welch = gain_over_base(table, response="accuracy", by="config", base="base", seed=None)
    row = welch.set_index(["benchmark", "config"]).loc[("mbpp", "agreement")]
    assert row["method"] == "welch"
    a, b = np.array([53, 54.0]), np.array([50, 52.0])
    result = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((result.low, result.high))
    overall = welch[welch["benchmark"] == "overall"].set_index("config")
    assert overall.loc["agreement", "gain"] == pytest.approx(2.0)
    assert np.isnan(overall.loc["agreement", "ci_low"])

    # An untrained base model is evaluated once: its value is taken as exact.
    single_base = table[~((table["config"] == "base") & (table["seed"] == 2))]
    one = gain_over_base(single_base, response="accuracy", by="config", base="base", seed=None)
    row = one.set_index(["benchmark", "config"]).loc[("mbpp", "agreement")]
    assert row["method"] == "one-sample"
    assert row["gain"] == pytest.approx(53.5 - 50)


def test_gain_errors_name_the_missing_configuration() -> None:
    with pytest.raises(AnalysisError, match="base configuration 'sft' not found"):
        gain_over_base(paper_table(), response="accuracy", by="config", base="sft")
    with pytest.raises(AnalysisError, match="several rows"):
        gain_over_base(paper_table(), response="accuracy", by="config", base="base", benchmark=None)


def _brute_force_pareto(points: np.ndarray, maximize: list[bool]) -> np.ndarray:
    signs = np.where(maximize, 1, -1)
    oriented = points * signs
    result = []
    for i, p in enumerate(oriented):
        if np.isnan(p).any():
            result.append(False)
            continue
        dominated = False
        for j, q in enumerate(oriented):
            if i != j and not np.isnan(q).any() and np.all(q >= p) and np.any(q > p):
                dominated = True
                break
        result.append(not dominated)
    return np.array(result)


@pytest.mark.parametrize("dims", [2, 3])
def test_pareto_set_matches_brute_force(dims: int) -> None:
    rng = np.random.default_rng(dims)
    for _ in range(20):
        # Rounded values create ties and duplicates on purpose.
        points = np.round(rng.normal(size=(40, dims)), 1)
        points[rng.integers(0, 40)] = np.nan
        maximize = list(rng.integers(0, 2, size=dims).astype(bool))
        assert np.array_equal(
            pareto_optimal(points, maximize), _brute_force_pareto(points, maximize)
        )


def test_pareto_edge_cases() -> None:
    same = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    assert list(pareto_optimal(same, [True, True])) == [True, True, False]
    assert pareto_optimal(np.empty((0, 2)), [True, False]).shape == (0,)
    with pytest.raises(AnalysisError, match="maximize flag"):
        pareto_optimal(same, [True])


def test_retention_frontier_marks_the_optimal_configurations() -> None:
    table = pd.DataFrame(
        {
            "config": ["base", "base", "sft", "sft", "agree", "agree", "ema", "ema"],
            "accuracy": [60, 62, 70, 70, 66, 66, 61, 61],
            "retention_ppl": [1.0, 1.0, 9.0, 9.0, 1.5, 1.5, 2.0, 2.0],
        }
    )
    frontier = retention_frontier(
        table, accuracy="accuracy", retention="retention_ppl", by="config"
    ).set_index("config")
    # SFT is most accurate but drifts most; base drifts least; agree sits between; EMA is
    # beaten by agree on both axes.
    assert frontier["pareto"].to_dict() == {"base": True, "sft": True, "agree": True, "ema": False}
    assert frontier.loc["base", "accuracy"] == pytest.approx(61.0)
    assert frontier.loc["base", "n"] == 2


def _curve_points() -> pd.DataFrame:
    rows = []
    for run, group, steps, offset in (
        ("r1", "A", [0, 10, 20, 30], 0.0),
        ("r2", "A", [0, 10, 20], 1.0),
        ("r3", "B", [0, 10], 5.0),
    ):
        for step in steps:
            rows.append({"run_id": run, "group": group, "step": step, "value": offset + step})
    rows.append({"run_id": "r2", "group": "A", "step": 20, "value": 100.0})  # a replayed step
    return pd.DataFrame(rows)


def test_curves_align_on_steps_and_handle_different_lengths() -> None:
    curves = curves_mean_ci(_curve_points(), group="group").set_index(["group", "step"])
    assert curves.loc[("A", 0), "n"] == 2
    assert curves.loc[("A", 0), "mean"] == pytest.approx(0.5)
    sd = np.std([0.0, 1.0], ddof=1)
    half = stats.t.ppf(0.975, 1) * sd / np.sqrt(2)
    assert curves.loc[("A", 0), "ci_high"] == pytest.approx(0.5 + half)
    # The replayed (r2, 20) keeps its last value.
    assert curves.loc[("A", 20), "mean"] == pytest.approx((20 + 100) / 2)
    # r2 stopped at 20: step 30 averages r1 alone, with no interval.
    assert curves.loc[("A", 30), "n"] == 1
    assert np.isnan(curves.loc[("A", 30), "ci_low"])
    assert curves.loc[("B", 10), "mean"] == pytest.approx(15.0)
    trimmed = curves_mean_ci(_curve_points(), group="group", min_runs=2)
    assert (trimmed["n"] >= 2).all()


def test_curves_interpolate_inside_each_run_only() -> None:
    points = pd.DataFrame(
        {
            "run_id": ["a", "a", "a", "b", "b"],
            "step": [0, 10, 20, 0, 20],
            "value": [0.0, 1.0, 2.0, 0.0, 4.0],
        }
    )
    exact = curves_mean_ci(points).set_index("step")
    assert exact.loc[10, "n"] == 1
    filled = curves_mean_ci(points, interpolate=True).set_index("step")
    assert filled.loc[10, "n"] == 2
    assert filled.loc[10, "mean"] == pytest.approx((1.0 + 2.0) / 2)
    longer = pd.concat([points, pd.DataFrame({"run_id": ["a"], "step": [40], "value": [3.0]})])
    tail = curves_mean_ci(longer, interpolate=True).set_index("step")
    assert tail.loc[40, "n"] == 1  # b is never extrapolated past its last step
