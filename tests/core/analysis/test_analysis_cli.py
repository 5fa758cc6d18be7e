"""`analyze`: a table of runs in, effects/comparisons/summaries as CSV + LaTeX + JSON out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.core.analysis.analysis_synthetic import linear_model_table
from unisd_core.analysis import AnalysisError
from unisd_core.analysis.cli import analyze, detect_factors, detect_metrics, read_runs

FACTORS = ["agreement", "ema", "clipping"]


def _runs_table(seeds: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    pieces = []
    for shift, benchmark in enumerate(["mbpp", "scienceqa"]):
        table = linear_model_table(rng, factors=FACTORS, seeds=seeds).drop(columns="config")
        table["accuracy"] += 5 * shift
        table["benchmark"] = benchmark
        table["retention_ppl"] = 2 + 0.5 * table["ema"] + rng.normal(0, 0.05, len(table))
        pieces.append(table)
    table = pd.concat(pieces, ignore_index=True)
    table.insert(0, "run_id", [f"run-{i % (len(table) // 2)}" for i in range(len(table))])
    table["param.gamma_agreement"] = 0.01
    table["preset"] = "custom"
    return table


def test_analyze_writes_every_table(tmp_path: Path) -> None:
    source = tmp_path / "runs.csv"
    _runs_table().to_csv(source, index=False)
    summary = analyze(source, tmp_path / "out", None, n_boot=1000)

    out = tmp_path / "out"
    for name in (
        "effects.csv",
        "comparisons.csv",
        "power.csv",
        "gains.csv",
        "frontier.csv",
        "summary.json",
        "effects_accuracy.tex",
        "comparisons_accuracy.tex",
        "gains_accuracy.tex",
        "frontier_accuracy.tex",
        "effects_retention_ppl.tex",
    ):
        assert (out / name).is_file(), name
    assert summary["factors"] == FACTORS
    assert summary["responses"] == ["accuracy", "retention_ppl"]
    assert summary["benchmarks"] == ["mbpp", "scienceqa"]
    assert summary["n_seeds"] == 3
    assert summary["reference"] == "base"
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))

    effects = pd.read_csv(out / "effects.csv", keep_default_na=False, na_values=[""])
    overall = effects[(effects["benchmark"] == "overall") & (effects["response"] == "accuracy")]
    agreement = overall.set_index("term").loc["agreement"]
    assert agreement["estimate"] == pytest.approx(3.0, abs=0.6)
    assert agreement["ci_low"] < agreement["estimate"] < agreement["ci_high"]
    top = summary["top_effects"]["accuracy"][0]
    assert top["term"] == "agreement" and top["benchmark"] == "overall"

    comparisons = pd.read_csv(out / "comparisons.csv")
    assert {"t_pvalue_holm", "wilcoxon_pvalue_holm", "ci_low"} <= set(comparisons.columns)
    assert set(comparisons["benchmark"]) == {"mbpp", "scienceqa", "overall"}
    frontier = pd.read_csv(out / "frontier.csv")
    assert frontier["pareto"].any()


def test_analyze_reads_jsonl_and_the_long_form(tmp_path: Path) -> None:
    table = _runs_table()
    wide_source = tmp_path / "runs.jsonl"
    table.to_json(wide_source, orient="records", lines=True)
    long = table.melt(
        id_vars=[c for c in table.columns if c not in ("accuracy", "retention_ppl")],
        value_vars=["accuracy", "retention_ppl"],
        var_name="metric",
        value_name="value",
    )
    long_source = tmp_path / "long.csv"
    long.to_csv(long_source, index=False)

    first = analyze(wide_source, tmp_path / "a", "accuracy", n_boot=500)
    second = analyze(long_source, tmp_path / "b", "accuracy", n_boot=500)
    assert first["responses"] == second["responses"] == ["accuracy"]
    a = pd.read_csv(tmp_path / "a" / "effects.csv")
    b = pd.read_csv(tmp_path / "b" / "effects.csv")
    assert np.allclose(a["estimate"], b["estimate"], equal_nan=True)


def test_single_seed_skips_paired_tests_with_a_note(tmp_path: Path) -> None:
    source = tmp_path / "runs.csv"
    _runs_table(seeds=1).to_csv(source, index=False)
    summary = analyze(source, tmp_path / "out", "accuracy")
    assert not (tmp_path / "out" / "comparisons.csv").exists()
    notes = " ".join(summary["notes"])
    assert "paired tests skipped" in notes
    assert "Confidence intervals unavailable" in notes


def test_detection_of_factors_and_metrics() -> None:
    table = _runs_table()
    table["ema"] = np.where(table["ema"], "on", "off")
    assert detect_factors(table) == FACTORS
    assert detect_metrics(table, FACTORS) == ["accuracy", "retention_ppl"]


def test_reading_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="no such table"):
        read_runs(tmp_path / "missing.csv")
    (tmp_path / "runs.txt").write_text("x")
    with pytest.raises(AnalysisError, match="unknown table format"):
        read_runs(tmp_path / "runs.txt")
    with pytest.raises(AnalysisError, match=r"has no runs\.csv"):
        read_runs(tmp_path)
    (tmp_path / "runs.csv").write_text("accuracy,seed\n1,0\n2,1\n")
    assert len(read_runs(tmp_path)) == 2
    with pytest.raises(AnalysisError, match="no factor columns"):
        analyze(tmp_path / "runs.csv", tmp_path / "out")


def test_parquet_input(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    source = tmp_path / "runs.parquet"
    _runs_table().to_parquet(source)
    assert analyze(source, tmp_path / "out", "accuracy", n_boot=500)["rows"] == 48


def test_unisd_analyze_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from unisd_core.cli import app

    source = tmp_path / "runs.csv"
    _runs_table().to_csv(source, index=False)
    runner = CliRunner()
    result = runner.invoke(
        app, ["analyze", str(source), "--output", str(tmp_path / "out"), "--response", "accuracy"]
    )
    assert result.exit_code == 0, result.output
    assert "files in" in result.output
    assert (tmp_path / "out" / "effects.csv").is_file()

    bad = runner.invoke(app, ["analyze", str(tmp_path / "nope.csv")])
    assert bad.exit_code == 2
    assert "no such table" in bad.output


def test_analyze_without_a_seed_column_uses_run_ids(tmp_path: Path) -> None:
    source = tmp_path / "runs.csv"
    _runs_table().drop(columns="seed").to_csv(source, index=False)
    summary = analyze(source, tmp_path / "out", "accuracy")
    effects = pd.read_csv(tmp_path / "out" / "effects.csv")
    assert (effects.loc[effects["benchmark"] == "overall", "n"] == 24).all()
    assert "paired tests skipped" in " ".join(summary["notes"])


def test_gains_latex_keeps_the_paper_rows(tmp_path: Path) -> None:
    source = tmp_path / "runs.csv"
    _runs_table().to_csv(source, index=False)
    analyze(source, tmp_path / "out", "accuracy", n_boot=500)
    tex = (tmp_path / "out" / "gains_accuracy.tex").read_text()
    body = tex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    assert [line.split(" & ")[0] for line in body] == [
        "agreement",
        "ema",
        "clipping",
        "agreement+ema+clipping",
    ]
    gains = pd.read_csv(tmp_path / "out" / "gains.csv")
    assert gains["config"].nunique() == 7  # the CSV keeps every configuration


def test_metrics_defined_on_some_benchmarks_and_constant_columns(tmp_path: Path) -> None:
    table = _runs_table()
    table["pass_at_1"] = np.where(table["benchmark"] == "mbpp", table["accuracy"] / 100, np.nan)
    table["max_steps"] = 200
    source = tmp_path / "runs.csv"
    table.to_csv(source, index=False)
    summary = analyze(source, tmp_path / "out", n_boot=500)
    assert summary["responses"] == ["accuracy", "retention_ppl", "pass_at_1"]
    assert any(note.startswith("max_steps: skipped") for note in summary["notes"])
    effects = pd.read_csv(tmp_path / "out" / "effects.csv")
    assert set(effects.loc[effects["response"] == "pass_at_1", "benchmark"]) == {"mbpp"}
    gains = pd.read_csv(tmp_path / "out" / "gains.csv")
    assert set(gains.loc[gains["response"] == "pass_at_1", "benchmark"]) == {"mbpp"}
