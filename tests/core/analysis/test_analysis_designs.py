"""Designs: configurations, run counts and the aliasing each fraction reports."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from unisd_core.analysis import (
    AnalysisError,
    estimate_run_count,
    factorial_effects,
    fractional_factorial,
    full_factorial,
    one_at_a_time,
    paper_layout,
)

FIVE = ["A", "B", "C", "D", "E"]


def test_full_factorial_has_every_combination_once() -> None:
    design = full_factorial(FIVE, seeds=[1, 2, 3])
    levels = design.configs[FIVE].to_numpy()
    assert design.n_configs == 32
    assert len({tuple(row) for row in levels}) == 32
    assert design.run_count() == 96
    assert design.run_count(benchmarks=4) == 384
    # Standard order: the first factor alternates fastest.
    assert list(design.configs["A"][:4]) == [False, True, False, True]
    assert design.configs.loc[0, "config"] == "base"
    assert design.resolution is None
    assert all(not partners for partners in design.aliases().values())


def test_runs_cross_configurations_with_seeds() -> None:
    runs = full_factorial(["x", "y"], seeds=2).runs()
    assert list(runs.columns) == ["config", "x", "y", "seed"]
    assert len(runs) == 8
    assert list(runs["seed"]) == [0, 1] * 4
    assert runs.groupby("config").size().eq(2).all()


def test_resolution_five_half_fraction_of_five_factors() -> None:
    design = fractional_factorial(FIVE, resolution=5, seeds=1)
    assert design.n_configs == 16
    assert design.generators == {"E": "A:B:C:D"}
    assert design.defining_relation == ("A:B:C:D:E",)
    assert design.resolution == 5
    # Resolution V: no main effect or two-factor interaction aliases another of order <= 2.
    assert all(not partners for partners in design.aliases(max_order=2).values())
    three = design.aliases(max_order=3)
    assert three["A:B"] == ("C:D:E",)
    assert three["A"] == ()


def test_resolution_four_half_fraction_reports_interaction_aliases() -> None:
    design = fractional_factorial(FIVE, resolution=4, seeds=1)
    assert design.n_configs == 16
    assert design.resolution == 4
    word = set(design.defining_relation[0].split(":"))
    assert len(word) == 4
    aliases = design.aliases(max_order=2)
    # Mains are clear of two-factor interactions in resolution IV ...
    assert all(aliases[f] == () for f in FIVE)
    # ... while interactions pair up exactly as the defining word says (AB = CE for I = ABCE).
    for a, b in itertools.combinations(sorted(word), 2):
        rest = sorted(word - {a, b})
        assert aliases[f"{a}:{b}"] == (":".join(rest),)
    outside = (set(FIVE) - word).pop()
    assert aliases[f"A:{outside}"] == () if outside != "A" else True
    assert design.aliases(max_order=3)["A"] == (":".join(sorted(word - {"A"})),)


def test_fraction_levels_satisfy_the_defining_relation() -> None:
    design = fractional_factorial(FIVE, resolution=3)
    coded = np.where(design.configs[FIVE].to_numpy(), 1, -1)
    assert design.n_configs == 8
    assert design.resolution == 3
    for word in design.defining_relation:
        columns = [FIVE.index(f) for f in word.split(":")]
        assert np.all(np.prod(coded[:, columns], axis=1) == 1)
    # Columns of a regular fraction stay balanced and orthogonal.
    assert np.all(coded.sum(axis=0) == 0)
    assert np.allclose(coded.T @ coded, 8 * np.eye(5))


def test_fraction_by_run_count_maximises_resolution() -> None:
    assert fractional_factorial(FIVE, n_runs=16).resolution == 5
    assert fractional_factorial(list("ABCDEF"), n_runs=16).resolution == 4
    assert fractional_factorial(list("ABCDEFG"), n_runs=8).resolution == 3


def test_explicit_generators_and_their_errors() -> None:
    design = fractional_factorial(FIVE, generators={"D": "A:B", "E": ["A", "C"]})
    assert design.generators == {"D": "A:B", "E": "A:C"}
    assert set(design.defining_relation) == {"A:B:D", "A:C:E", "B:C:D:E"}
    assert design.aliases()["A"] == ("B:D", "C:E")
    with pytest.raises(AnalysisError, match="unknown"):
        fractional_factorial(FIVE, generators={"E": "A:Z"})
    with pytest.raises(AnalysisError, match="at least two"):
        fractional_factorial(FIVE, generators={"E": "A"})
    with pytest.raises(AnalysisError, match="exactly one"):
        fractional_factorial(FIVE, resolution=4, n_runs=16)
    with pytest.raises(AnalysisError, match="resolution exactly 6"):
        fractional_factorial(FIVE, resolution=6)
    with pytest.raises(AnalysisError, match="power of two"):
        fractional_factorial(FIVE, n_runs=12)


def test_effects_analysis_reports_the_design_aliases() -> None:
    design = fractional_factorial(FIVE, resolution=4, seeds=2)
    runs = design.runs()
    runs["y"] = np.random.default_rng(0).normal(size=len(runs))
    effects = factorial_effects(runs, factors=FIVE, response="y", seed="seed")
    expected = design.aliases(max_order=2)
    for term, partners in expected.items():
        row = effects.loc[effects["term"] == term].iloc[0]
        if not partners:
            assert row["aliased_with"] == ""
            continue
        # One of each aliased pair carries the estimate and names its partner; the other points
        # back at it and has no estimate of its own.
        assert row["aliased_with"] == partners[0]
        partner_row = effects.loc[effects["term"] == partners[0]].iloc[0]
        assert np.isnan(row["estimate"]) != np.isnan(partner_row["estimate"])


def test_one_at_a_time_and_paper_layout() -> None:
    oat = one_at_a_time(["agreement", "ema", "clipping"], seeds=[7, 8])
    assert list(oat.configs["config"]) == ["base", "agreement", "ema", "clipping"]
    assert oat.configs[["agreement", "ema", "clipping"]].to_numpy().sum() == 3
    assert oat.run_count() == 8

    paper = paper_layout(["agreement", "ema", "clipping"], seeds=3)
    assert list(paper.configs["config"]) == ["base", "agreement", "ema", "clipping", "unisd_star"]
    assert paper.configs.iloc[-1][["agreement", "ema", "clipping"]].all()
    assert paper.run_count(benchmarks=4) == 5 * 3 * 4


def test_estimate_run_count_matches_the_designs() -> None:
    assert estimate_run_count("full", FIVE, seeds=5) == 160
    assert estimate_run_count("fractional", FIVE, seeds=5, resolution=5) == 80
    assert estimate_run_count("one_at_a_time", FIVE, seeds=3) == 18
    assert estimate_run_count("paper", FIVE, seeds=3, benchmarks=4) == 84
    assert full_factorial(FIVE, seeds=5).gpu_hours(0.5) == 80.0
    with pytest.raises(AnalysisError, match="unknown design kind"):
        estimate_run_count("latin", FIVE)


@pytest.mark.parametrize(
    ("factors", "seeds", "message"),
    [
        ([], 1, "at least one factor"),
        (["a", "a"], 1, "unique"),
        (["a:b"], 1, "without ':'"),
        (["a"], 0, "at least one seed"),
        (["a"], [1, 1], "distinct"),
    ],
)
def test_design_input_errors(factors: list[str], seeds: int | list[int], message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        full_factorial(factors, seeds=seeds)
