"""The paper-table template in the UI: request bodies, preview text, the table and its exports."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from frontend import templates_view as paper
from frontend.tabs.analysis import export_files, paper_figures
from unisd_core.templates import BUDGETS, PaperTableOptions

#: A `paper_table` as `GET /sweeps/{id}/analysis` returns it: base with one seed, sft with two.
TABLE: dict[str, Any] = {
    "methods": ["base", "sft"],
    "columns": ["scienceqa", "gpqa", "overall"],
    "ood": ["gpqa"],
    "scores": [
        {"method": "base", "benchmark": "scienceqa", "mean": 0.3, "ci_low": None,
         "ci_high": None, "n": 1},
        {"method": "base", "benchmark": "gpqa", "mean": 0.25, "ci_low": None,
         "ci_high": None, "n": 1},
        {"method": "base", "benchmark": "overall", "mean": 0.275, "ci_low": None,
         "ci_high": None, "n": 1},
        {"method": "sft", "benchmark": "scienceqa", "mean": 0.452, "ci_low": 0.421,
         "ci_high": 0.483, "n": 2},
        {"method": "sft", "benchmark": "gpqa", "mean": None, "ci_low": None,
         "ci_high": None, "n": 0},
        {"method": "sft", "benchmark": "overall", "mean": 0.40, "ci_low": 0.38,
         "ci_high": 0.42, "n": 2},
    ],
    "gains": [
        {"method": "sft", "benchmark": "scienceqa", "gain": 0.152, "ci_low": 0.121,
         "ci_high": 0.183, "n": 2, "interval": "paired"},
        {"method": "sft", "benchmark": "overall", "gain": 0.125, "ci_low": 0.105,
         "ci_high": 0.145, "n": 2, "interval": "paired"},
    ],
    "retention": [
        {"method": "base", "mean": 1.2, "ci_low": None, "ci_high": None, "n": 1},
        {"method": "sft", "mean": 2.5, "ci_low": 2.3, "ci_high": 2.7, "n": 2},
    ],
    "findings": [
        {"claim": "SFT drifts more than self-distillation", "verdict": "holds",
         "evidence": ["sft 2.50 vs opsd 1.40 retention PPL"]},
        {"claim": "UniSD* beats every single component", "verdict": "unresolved",
         "evidence": []},
    ],
    "notes": ["base evaluated with one seed"],
}  # fmt: skip


def test_body_carries_the_options_and_leaves_empty_overrides_to_the_budget() -> None:
    body = paper.paper_table_body(
        "", " builtin:tiny-random ", "small", 1.0, ["base", "sft"], ["scienceqa"], "", None, 2
    )
    assert body == {
        "name": "paper-table",
        "template": "paper-table",
        "template_options": {
            "model": "builtin:tiny-random",
            "budget": "small",
            "methods": ["base", "sft"],
            "benchmarks": ["scienceqa"],
            "source": "bundled",
            "seeds": 1,
            "max_eval_examples": 2,
        },
    }
    # what the API will validate: the body is a valid PaperTableOptions as it stands
    PaperTableOptions.model_validate(body["template_options"])
    full = paper.paper_table_body("mine", "m", "paper", 3, [], [], "hf", 5, "")
    assert full["name"] == "mine" and full["template_options"]["max_steps"] == 5
    assert "max_eval_examples" not in full["template_options"]
    # bad values are passed on unchanged, for the API to name the field
    assert full["template_options"]["methods"] == []
    assert (
        paper.paper_table_body("x", "m", "small", -2, ["a"], ["b"])["template_options"]["seeds"]
        == -2
    )


def test_budget_help_describes_each_budget_from_its_values() -> None:
    text = paper.budget_help("small")
    lines = text.splitlines()
    assert len(lines) == 2
    small = next(line for line in lines if "small" in line)
    budget = BUDGETS["small"]  # the numbers come from the budget (it is tuned now and then)
    assert small.startswith("- **") and "fits a CPU" in small
    assert f"{budget.max_steps} steps of {budget.batch_size} prompts" in small
    assert f"{budget.max_eval_examples} evaluation items" in small
    big = next(line for line in lines if "paper" in line)
    assert "one epoch" in big and "full evaluation splits" in big and "**" not in big


def test_preview_names_runs_hours_and_the_columns_each_benchmark_adds() -> None:
    preview = SimpleNamespace(
        run_count=4, estimated_gpu_hours=0.0123, estimate_basis="default", seeds=[0, 1]
    )
    text = paper.preview_markdown(preview, ["scienceqa", "mbpp", "cose"], ["base", "sft"])
    assert text.startswith("**4 runs**") and "~0.01 GPU-hours (default)" in text
    preview.estimated_gpu_hours = 0.0001
    tiny = paper.preview_markdown(preview, ["cose"], ["sft"])
    assert "under 0.01 GPU-hours" in tiny and "once per benchmark" not in tiny
    assert "base is evaluated once per benchmark" in text
    assert "scienceqa → scienceqa, gpqa (OOD)" in text
    assert "mbpp → mbpp, humaneval (OOD)" in text
    assert "- cose → cose\n" in text + "\n"
    assert paper.queued_message(7, 4) == "Sweep 7 queued with 4 runs. Analysis: `?sweep=7`"


@pytest.mark.parametrize(
    ("cell", "text"),
    [
        ((0.452, 0.421, 0.483, 2), "45.2 ± 3.1"),
        ((0.3, None, None, 1), "30.0"),
        ((0.3, 0.2, 0.4, 1), "30.0"),  # an interval with one seed is not shown
        ((None, None, None, 0), "–"),
        ((float("nan"), None, None, 2), "–"),
        ((1.0, 1.0, 1.0, 3), "100.0 ± 0.0"),
    ],
)
def test_score_cells_are_percent_with_the_interval_half_width(
    cell: tuple[Any, ...], text: str
) -> None:
    assert paper.score_cell(*cell) == text


def test_grid_has_method_rows_and_labelled_ood_columns() -> None:
    grid = paper.paper_grid(TABLE)
    assert list(grid.columns) == ["method", "scienceqa", "gpqa (OOD)", "overall"]
    assert grid["method"].tolist() == ["base", "sft"]
    assert grid.iloc[1].tolist() == ["sft", "45.2 ± 3.1", "–", "40.0 ± 2.0"]
    assert grid.iloc[0].tolist() == ["base", "30.0", "25.0", "27.5"]
    latex = paper.grid_latex(grid)
    assert r"45.2 $\pm$ 3.1" in latex and "±" not in latex


def test_gains_overall_and_retention_in_table_order_without_the_base() -> None:
    assert paper.gain_matrix(TABLE) == {
        "sft": {"scienceqa": pytest.approx(15.2), "overall": pytest.approx(12.5)}
    }
    assert paper.gain_columns(TABLE) == ["scienceqa", "gpqa (OOD)", "overall"]
    (overall,) = paper.overall_gains(TABLE)
    assert overall["term"] == "sft"
    assert overall["estimate"] == pytest.approx(12.5)
    assert (overall["ci_low"], overall["ci_high"]) == (pytest.approx(10.5), pytest.approx(14.5))
    retention = paper.retention_rows(TABLE)
    assert [r["method"] for r in retention] == ["base", "sft"]
    assert retention[0]["ci_low"] is None and retention[1]["ci_high"] == 2.7


def test_findings_show_verdicts_in_bold_with_evidence() -> None:
    text = paper.findings_markdown(TABLE["findings"])
    assert text.splitlines() == [
        "- **holds**: SFT drifts more than self-distillation",
        "    - sft 2.50 vs opsd 1.40 retention PPL",
        "- **unresolved**: UniSD* beats every single component",
    ]
    assert paper.findings_markdown([]) == "No findings can be checked yet."


def test_paper_figures_follow_the_table() -> None:
    figures = paper_figures(TABLE)
    heat = figures["paper_gains"]
    assert heat is not None
    # gpqa has no gain, so the heatmap keeps the table's order of the filled columns
    assert list(heat.data[0].x) == ["scienceqa", "overall"]
    assert list(heat.data[0].y) == ["sft"]
    forest = figures["paper_overall_gains"]
    assert forest is not None and list(forest.data[0].y) == ["sft"]
    bars = figures["paper_retention"]
    assert bars is not None and list(bars.data[0].x) == ["base", "sft"]
    assert list(bars.data[0].error_y.array) == [0.0, pytest.approx(0.2)]
    assert paper_figures({"methods": ["base"]}) == {
        "paper_gains": None,
        "paper_overall_gains": None,
        "paper_retention": None,
    }


def test_exports_write_csv_latex_markdown_and_figures(tmp_path: Path) -> None:
    def fail(figures: Any, paths: Any) -> None:
        raise RuntimeError("Chromium not found\nmore detail")

    tables = paper.paper_frames(TABLE)
    files, note = export_files(
        tables,
        paper_figures(TABLE),
        tmp_path,
        texts={"paper_findings": paper.findings_markdown(TABLE["findings"])},
        png=fail,
    )
    names = sorted(Path(f).name for f in files)
    assert "paper_table.csv" in names and "paper_table.tex" in names
    assert "paper_scores.csv" in names and "paper_findings.md" in names
    assert "paper_gains.html" in names and not any(n.endswith(".png") for n in names)
    assert note.startswith("PNG export failed (RuntimeError: Chromium not found)")
    csv = (tmp_path / "paper_table.csv").read_text(encoding="utf-8")
    assert csv.splitlines()[0] == "method,scienceqa,gpqa (OOD),overall"
    assert "sft,45.2 ± 3.1,–,40.0 ± 2.0" in csv
