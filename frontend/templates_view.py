"""The `paper-table` template in the UI: request bodies, preview texts and the paper's table.

Pure functions (no Gradio): the Ablation tab builds the sweep request with them and the Analysis
tab turns the API's `paper_table` into a grid, gain matrices, retention rows and findings.
Scores arrive as fractions (0..1) and are shown as percent; gains as percentage points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from unisd_core.templates import (
    BUDGETS,
    OOD_EVALUATIONS,
    PAPER_TABLE,
    UNTRAINED,
    Budget,
    PaperTableOptions,
)

OVERALL = "overall"


# --- Ablation tab: the request ------------------------------------------------------------------


def _purposes() -> dict[str, str]:
    """'small: fits a CPU; paper: ...' (the options' own field description) -> name -> purpose."""
    description = PaperTableOptions.model_fields["budget"].description or ""
    found = {}
    for part in description.split(";"):
        name, _, purpose = part.partition(":")
        if purpose.strip():
            found[name.strip()] = purpose.strip().rstrip(".")
    return found


def budget_line(name: str, budget: Budget) -> str:
    """One line saying what a budget runs, read from its own values (never restated by hand)."""
    if budget.max_steps is not None:
        steps = f"{budget.max_steps} steps of {budget.batch_size or 'model-sized'} prompts"
    else:
        steps = "one epoch, batch by model size"
    if budget.grad_accum > 1:
        steps += f" x {budget.grad_accum} accumulation"
    train = (
        f"{budget.max_train_examples} training examples"
        if budget.max_train_examples is not None
        else "the full training split"
    )
    evaluation = (
        f"{budget.max_eval_examples} evaluation items per benchmark"
        if budget.max_eval_examples is not None
        else "full evaluation splits"
    )
    limits = f"{budget.max_prompt_length}/{budget.max_completion_length} token limits"
    purpose = _purposes().get(name)
    return f"{name}{f' ({purpose})' if purpose else ''}: {steps}, {train}, {evaluation}, {limits}"


def budget_help(selected: str | None = None) -> str:
    """Markdown: one line per budget, the selected one in bold."""
    lines = []
    for name, budget in BUDGETS.items():
        line = budget_line(name, budget)
        lines.append(f"- **{line}**" if name == selected else f"- {line}")
    return "\n".join(lines)


def _count(value: float | int | str | None) -> int | None:
    """A number input's value as an int, or None when it is empty (the budget decides)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return round(float(value))


def paper_table_body(
    name: str,
    model: str,
    budget: str,
    seeds: float | int | None,
    methods: Sequence[str],
    benchmarks: Sequence[str],
    source: str = "bundled",
    max_steps: float | int | None = None,
    max_eval_examples: float | int | None = None,
) -> dict[str, Any]:
    """The body of `POST /sweeps` (and `/sweeps/preview`) for a paper-table sweep.

    Values go to the API unchecked: it validates them and names the offending field
    (`template_options.seeds`), which is the message the tab shows. Empty overrides are left
    out so that the budget's own values apply.
    """
    options: dict[str, Any] = {
        "model": (model or "").strip(),
        "budget": budget,
        "methods": list(methods),
        "benchmarks": list(benchmarks),
        "source": (source or "").strip() or "bundled",
    }
    count = _count(seeds)
    if count is not None:
        options["seeds"] = count
    for key, value in (("max_steps", max_steps), ("max_eval_examples", max_eval_examples)):
        override = _count(value)
        if override is not None:
            options[key] = override
    return {
        "name": (name or "").strip() or PAPER_TABLE,
        "template": PAPER_TABLE,
        "template_options": options,
    }


def columns_added(benchmarks: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(training benchmark, the columns its runs fill): ScienceQA also fills GPQA (OOD)."""
    added = []
    for benchmark in benchmarks:
        columns = [benchmark]
        if benchmark in OOD_EVALUATIONS:
            columns.append(f"{OOD_EVALUATIONS[benchmark]} (OOD)")
        added.append((benchmark, columns))
    return added


def preview_markdown(preview: Any, benchmarks: Sequence[str], methods: Sequence[str]) -> str:
    """Run count, GPU-hour estimate and the table's columns, from `POST /sweeps/preview`."""
    run_count = int(getattr(preview, "run_count", 0))
    hours = float(getattr(preview, "estimated_gpu_hours", 0.0) or 0.0)
    basis = str(getattr(preview, "estimate_basis", "") or "")
    seeds = list(getattr(preview, "seeds", []) or [])
    text = (
        f"**{run_count} runs** = {len(methods)} method(s) x {len(benchmarks)} benchmark(s) x "
        f"{len(seeds)} seed(s)"
    )
    if UNTRAINED in methods and len(seeds) > 1:
        text += f" ({UNTRAINED} is evaluated once per benchmark)"
    shown = f"~{hours:.2f}" if hours >= 0.01 else "under 0.01"
    text += f" · estimated compute: {shown} GPU-hours"
    if basis:
        text += f" ({basis})"
    lines = [
        f"- {benchmark} → {', '.join(columns)}" for benchmark, columns in columns_added(benchmarks)
    ]
    if lines:
        text += "\n\nColumns each training benchmark adds (then `overall`):\n" + "\n".join(lines)
    return text


def queued_message(sweep_id: int, run_count: int) -> str:
    return f"Sweep {sweep_id} queued with {run_count} runs. Analysis: `?sweep={sweep_id}`"


# --- Analysis tab: the paper's table ------------------------------------------------------------


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def column_label(column: str, ood: Sequence[str]) -> str:
    return f"{column} (OOD)" if column in ood else column


def score_cell(
    mean: float | None, ci_low: float | None, ci_high: float | None, n: int | None
) -> str:
    """'45.2 ± 3.1': percent, with the half-width of the interval; no ± below two seeds."""
    mean = _number(mean)
    if mean is None:
        return "–"
    text = f"{100 * mean:.1f}"
    low, high = _number(ci_low), _number(ci_high)
    if (n or 0) >= 2 and low is not None and high is not None:
        text += f" ± {100 * (high - low) / 2:.1f}"
    return text


def paper_grid(table: Mapping[str, Any]) -> pd.DataFrame:
    """Rows = methods, columns = benchmarks (OOD ones labelled) and overall; cells as text."""
    columns = [str(c) for c in table.get("columns") or []]
    ood = [str(c) for c in table.get("ood") or []]
    cells = {(str(s.get("method")), str(s.get("benchmark"))): s for s in table.get("scores") or []}
    rows = []
    for method in table.get("methods") or []:
        row: dict[str, str] = {"method": str(method)}
        for column in columns:
            cell = cells.get((str(method), column), {})
            row[column_label(column, ood)] = score_cell(
                cell.get("mean"), cell.get("ci_low"), cell.get("ci_high"), cell.get("n")
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", *(column_label(c, ood) for c in columns)])


def gain_matrix(table: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Method -> column label -> gain over the base in percentage points (base row left out)."""
    ood = [str(c) for c in table.get("ood") or []]
    matrix: dict[str, dict[str, float]] = {}
    for gain in table.get("gains") or []:
        value = _number(gain.get("gain"))
        method = str(gain.get("method"))
        if value is None or method == UNTRAINED:
            continue
        label = column_label(str(gain.get("benchmark")), ood)
        matrix.setdefault(method, {})[label] = 100 * value
    return matrix


def gain_columns(table: Mapping[str, Any]) -> list[str]:
    """The heatmap's column order: the table's, not alphabetical (overall stays last)."""
    ood = [str(c) for c in table.get("ood") or []]
    return [column_label(str(c), ood) for c in table.get("columns") or []]


def overall_gains(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Overall gain of each method (percentage points) as forest-plot rows, in table order."""
    by_method = {
        str(g.get("method")): g
        for g in table.get("gains") or []
        if str(g.get("benchmark")) == OVERALL
    }
    rows = []
    for method in table.get("methods") or []:
        gain = by_method.get(str(method))
        value = _number(gain.get("gain")) if gain else None
        if gain is None or value is None or method == UNTRAINED:
            continue
        low, high = _number(gain.get("ci_low")), _number(gain.get("ci_high"))
        rows.append(
            {
                "term": str(method),
                "estimate": 100 * value,
                # None when there is no interval (one seed): the plot draws no whisker for it
                "ci_low": None if low is None else 100 * low,
                "ci_high": None if high is None else 100 * high,
                "n": gain.get("n"),
            }
        )
    return rows


def retention_rows(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Retention perplexity per method (lower: less drift from the base model), table order."""
    by_method = {str(r.get("method")): r for r in table.get("retention") or []}
    rows = []
    for method in table.get("methods") or []:
        row = by_method.get(str(method))
        mean = _number(row.get("mean")) if row else None
        if row is None or mean is None:
            continue
        rows.append(
            {
                "method": str(method),
                "mean": mean,
                "ci_low": _number(row.get("ci_low")),
                "ci_high": _number(row.get("ci_high")),
                "n": int(row.get("n") or 0),
            }
        )
    return rows


def findings_markdown(findings: Sequence[Mapping[str, Any]]) -> str:
    """The paper's claims with their verdicts in bold and the evidence under each."""
    if not findings:
        return "No findings can be checked yet."
    lines = []
    for finding in findings:
        verdict = str(finding.get("verdict") or "unresolved")
        lines.append(f"- **{verdict}**: {finding.get('claim', '')}")
        lines += [f"    - {item}" for item in finding.get("evidence") or []]
    return "\n".join(lines)


def paper_frames(table: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """Tables to export: the grid as shown, and the numbers behind it (fractions, as the API)."""
    return {
        "paper_table": paper_grid(table),
        "paper_scores": pd.DataFrame(
            list(table.get("scores") or []),
            columns=["method", "benchmark", "mean", "ci_low", "ci_high", "n"],
        ),
        "paper_gains": pd.DataFrame(
            list(table.get("gains") or []),
            columns=["method", "benchmark", "gain", "ci_low", "ci_high", "n", "interval"],
        ),
        "paper_retention": pd.DataFrame(
            list(table.get("retention") or []),
            columns=["method", "mean", "ci_low", "ci_high", "n"],
        ),
    }


def grid_latex(grid: pd.DataFrame) -> str:
    """The grid as a LaTeX tabular: names escaped (unisd_star), ± as $\\pm$, – as --."""
    text = grid.to_latex(index=False, escape=True)
    return text.replace("±", "$\\pm$").replace("–", "--")
