"""The paper's table from runs: scores, paired gains, retention, findings, evaluation precision."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from unisd_core.analysis.errors import AnalysisError
from unisd_core.analysis.paper import (
    Interval,
    item_difference,
    paired_difference,
    paper_findings,
    paper_table,
    worst_case_half_width,
)

COLUMNS = ["scienceqa", "gpqa", "mbpp", "humaneval"]
TRAINED = {"scienceqa": ["scienceqa", "gpqa"], "mbpp": ["mbpp", "humaneval"]}


def runs(effects: dict[str, float], drift: dict[str, float], noise: float = 0.0) -> pd.DataFrame:
    """Base evaluated once; the others with three seeds (seed s adds s * noise)."""
    rows = []
    for method, effect in effects.items():
        for seed in [0] if method == "base" else [0, 1, 2]:
            for trained, evaluated in TRAINED.items():
                for benchmark in evaluated:
                    shift = 0.0 if method == "base" else seed * noise
                    rows.append(
                        {
                            "method": method,
                            "train_benchmark": trained,
                            "benchmark": benchmark,
                            "seed": seed,
                            "score": 0.4 + effect + shift + (0.05 if benchmark == "gpqa" else 0),
                            "retention_ppl": drift[method] + shift,
                        }
                    )
    return pd.DataFrame(rows)


EFFECTS = {"base": 0.0, "sft": 0.01, "opsd": 0.05, "ema": 0.06, "unisd_star": 0.08}
DRIFT = {"base": float("nan"), "sft": 3.0, "opsd": 1.8, "ema": 1.7, "unisd_star": 1.75}


def test_scores_overall_and_gains_are_paired_across_seeds() -> None:
    table = runs(EFFECTS, DRIFT, noise=0.01)
    result = paper_table(table, columns=COLUMNS, methods=list(EFFECTS))
    assert result.columns == [*COLUMNS, "overall"]
    assert result.methods == list(EFFECTS)
    scores = result.scores.set_index(["method", "benchmark"])
    # overall = mean over the four columns; seeds 0,1,2 add 0, .01, .02
    assert scores.loc[("ema", "overall"), "mean"] == pytest.approx(0.4 + 0.06 + 0.05 / 4 + 0.01)
    assert scores.loc[("ema", "overall"), "n"] == 3
    # the base was evaluated once: no interval of its own, and the note says it stands for all
    base = scores.loc[("base", "gpqa")]
    assert base["n"] == 1 and math.isnan(base["low"])
    assert any("evaluated once" in n for n in result.notes)
    gains = result.gains.set_index(["config", "benchmark"])
    assert gains.loc[("opsd", "mbpp"), "method"] == "paired"
    assert gains.loc[("opsd", "mbpp"), "gain"] == pytest.approx(0.05 + 0.01)
    grid = result.grid()
    assert grid.loc["opsd", "mbpp"].startswith("46.0 ± ")
    assert grid.loc["base", "mbpp"] == "40.0"  # no ± for a single evaluation


def test_findings_hold_when_the_table_says_so() -> None:
    # differences constant across seeds except a small spread: every interval excludes zero
    table = runs(EFFECTS, DRIFT, noise=0.001)
    table.loc[(table["method"] == "sft") & (table["seed"] == 2), "score"] += 0.002
    findings = paper_findings(paper_table(table, columns=COLUMNS))
    assert [f.verdict for f in findings] == ["holds", "holds", "holds"]
    assert "best run here: ema" in findings[1].claim
    assert any(line.startswith("sft − opsd: +1.") for line in findings[0].evidence)


def test_findings_contradicted_and_unresolved() -> None:
    effects = {**EFFECTS, "sft": 0.2}  # SFT beats every distiller
    drift = {**DRIFT, "sft": 1.0}  # and drifts less
    table = runs(effects, drift, noise=0.001)
    findings = paper_findings(paper_table(table, columns=COLUMNS))
    assert findings[0].verdict == "contradicted" and findings[2].verdict == "contradicted"

    noisy = runs(EFFECTS, DRIFT)
    rng = np.random.default_rng(0)
    noisy["score"] += rng.normal(0, 0.2, len(noisy))  # noise swamps the effects
    noisy["retention_ppl"] += rng.normal(0, 5, len(noisy))
    verdicts = [f.verdict for f in paper_findings(paper_table(noisy, columns=COLUMNS))]
    assert verdicts == ["unresolved"] * 3


def test_findings_say_what_is_missing() -> None:
    table = runs({"base": 0.0, "opsd": 0.05}, DRIFT)
    findings = paper_findings(paper_table(table, columns=COLUMNS))
    assert all(f.verdict == "unresolved" for f in findings)
    assert all("not testable" in f.evidence[0] for f in findings)


def test_one_seed_gives_no_interval_and_no_verdict() -> None:
    table = runs(EFFECTS, DRIFT)
    table = table[table["seed"] == 0]
    result = paper_table(table, columns=COLUMNS)
    difference = paired_difference(result, "opsd", "sft")
    assert difference.n == 1 and difference.verdict() == "unresolved"


def test_missing_column_leaves_overall_empty() -> None:
    table = runs(EFFECTS, DRIFT, noise=0.01)
    table = table[~((table["method"] == "ema") & (table["benchmark"] == "humaneval"))]
    result = paper_table(table, columns=COLUMNS)
    overall = result.scores.set_index(["method", "benchmark"]).loc[("ema", "overall")]
    assert overall["n"] == 0 and math.isnan(overall["mean"])


def test_bad_tables_are_reported() -> None:
    with pytest.raises(AnalysisError, match="score"):
        paper_table(pd.DataFrame({"method": ["a"], "benchmark": ["b"], "seed": [0]}))


def test_item_level_precision() -> None:
    a = np.array([1, 1, 0, 1, 0, 1, 1, 1] * 10, dtype=float)
    b = np.array([1, 0, 0, 1, 0, 0, 1, 1] * 10, dtype=float)
    interval = item_difference(a, b)
    assert interval.mean == pytest.approx(0.25) and interval.n == 80
    assert interval.low < 0.25 < interval.high and interval.low > 0
    assert worst_case_half_width(100) == pytest.approx(1.959964 * math.sqrt(0.5 / 100), rel=1e-5)
    with pytest.raises(AnalysisError):
        item_difference(a, b[:5])


def test_interval_verdicts() -> None:
    assert Interval.of([1.0, 1.1, 0.9]).verdict() == "holds"
    assert Interval.of([-1.0, -1.1, -0.9]).verdict() == "contradicted"
    assert Interval.of([1.0, -1.0, 0.1]).verdict() == "unresolved"
    assert Interval.of([]).n == 0


def test_a_single_seed_gain_has_no_interval_against_a_once_evaluated_base() -> None:
    table = runs(EFFECTS, DRIFT, noise=0.01)
    table = table[(table["method"] != "ema") | (table["seed"] == 0)]  # ema: one seed only
    gains = paper_table(table, columns=COLUMNS).gains.set_index(["config", "benchmark"])
    single = gains.loc[("ema", "mbpp")]
    assert single["method"] == "none" and math.isnan(single["ci_low"])
    assert single["gain"] == pytest.approx(0.06)
    assert gains.loc[("opsd", "mbpp"), "method"] == "paired"
