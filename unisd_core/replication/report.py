"""The replication report: Markdown with the paper's table, gains, retention, findings, figures.

Everything in it is computed from the analysis table (see :mod:`.collect`) by the analysis
engine; nothing is typed in by hand. Figures are Plotly charts exported as PNG (kaleido drives a
headless Chromium); when no browser is available the report says so and links the HTML copies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unisd_core.analysis.paper import (
    Finding,
    PaperTable,
    item_difference,
    paper_findings,
    paper_table,
    worst_case_half_width,
)
from unisd_core.analysis.runs import OVERALL
from unisd_core.replication.collect import ItemScores
from unisd_core.templates import OOD_EVALUATIONS, PAPER_METHODS

OOD_BENCHMARKS = frozenset(OOD_EVALUATIONS.values())


@dataclass
class ReportInput:
    table: pd.DataFrame
    items: list[ItemScores]
    options: Mapping[str, Any]
    budget: Mapping[str, Any]
    environment: Mapping[str, str] = field(default_factory=dict)
    command: str = ""
    wall_seconds: float | None = None  # first run started to last run finished, when known
    notes: str = ""  # the authors' own remarks (Markdown), printed as theirs


def column_order(table: pd.DataFrame, trained_order: Sequence[str] = ()) -> list[str]:
    """Each training benchmark followed by its OOD partner, in ``trained_order`` when given."""
    present = set(table["benchmark"])
    order: list[str] = []
    for trained in dict.fromkeys([*trained_order, *table["train_benchmark"]]):
        for name in (trained, OOD_EVALUATIONS.get(trained, trained)):
            if name in present and name not in order:
                order.append(name)
    return order + sorted(present - set(order))


def _heading(name: str) -> str:
    return f"{name} (OOD)" if name in OOD_BENCHMARKS else name


def _fmt(value: float, scale: float = 100.0, digits: int = 1, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * scale:{'+' if sign else ''}.{digits}f}"


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def scores_section(result: PaperTable) -> str:
    grid = result.grid().reset_index()
    grid.columns = ["method", *(_heading(c) for c in result.columns)]
    return markdown_table(grid)


def gains_section(result: PaperTable) -> str:
    if result.gains.empty:
        return "_No base row: gains are not computed._"
    gains = result.gains
    rows = []
    for method in result.methods:
        cells = [method]
        for column in result.columns:
            hit = gains[(gains["config"] == method) & (gains["benchmark"] == column)]
            if hit.empty:
                cells.append("–")
                continue
            g = hit.iloc[0]
            text = _fmt(g["gain"], sign=True)
            if not math.isnan(g["ci_low"]):
                text += f" [{_fmt(g['ci_low'], sign=True)}, {_fmt(g['ci_high'], sign=True)}]"
            cells.append(text)
        if len(cells) > 1 and any(c != "–" for c in cells[1:]):
            rows.append(cells)
    frame = pd.DataFrame(rows, columns=["method", *(_heading(c) for c in result.columns)])
    return markdown_table(frame)


def retention_section(result: PaperTable) -> str:
    if result.retention.empty:
        return "_No retention perplexity was recorded._"
    rows = []
    for r in result.retention.itertuples():
        if math.isnan(r.mean):
            continue  # the untrained base has no retention of its own
        ci = f"[{r.low:.3f}, {r.high:.3f}]" if r.n >= 2 else "(one seed)"
        rows.append([r.method, f"{r.mean:.3f}", ci, r.n])
    frame = pd.DataFrame(rows, columns=["method", "retention PPL (mean)", "95% CI", "seeds"])
    return markdown_table(frame)


def precision_section(table: pd.DataFrame, items: Sequence[ItemScores], base: str = "base") -> str:
    """How much a fixed evaluation subset can resolve, and item-level CIs against the base."""
    lines = ["| benchmark | items | ±95% CI half-width of an accuracy difference (worst case) |"]
    lines.append("|---|---|---|")
    sizes = table.groupby("benchmark")["n"].max()
    for benchmark in column_order(table):
        n = int(sizes.get(benchmark, 0))
        if n:
            lines.append(
                f"| {_heading(benchmark)} | {n} | ±{worst_case_half_width(n) * 100:.1f} points |"
            )
    paired = item_level_vs_base(items, column_order(table), base)
    if paired.empty:
        return "\n".join(lines)
    lines += [
        "",
        "Item-level paired differences against the base (each method's per-item scores",
        "averaged over its seeds, minus the base's, on the same items; points):",
        "",
    ]
    frame = paired.assign(
        benchmark=paired["benchmark"].map(_heading),
        difference=[
            f"{_fmt(r.mean, sign=True)} [{_fmt(r.low, sign=True)}, {_fmt(r.high, sign=True)}]"
            for r in paired.itertuples()
        ],
    )[["method", "benchmark", "difference", "items"]]
    return "\n".join(lines) + "\n" + markdown_table(frame)


def item_level_vs_base(
    items: Sequence[ItemScores], columns: Sequence[str], base: str = "base"
) -> pd.DataFrame:
    by_key: dict[tuple[str, str], list[dict[str, float]]] = {}
    for entry in items:
        by_key.setdefault((entry.method, entry.benchmark), []).append(entry.scores)
    rows = []

    def paper_order(key: tuple[str, str]) -> tuple[int, int]:
        method, benchmark = key
        return (
            PAPER_METHODS.index(method) if method in PAPER_METHODS else len(PAPER_METHODS),
            list(columns).index(benchmark) if benchmark in columns else len(columns),
        )

    for (method, benchmark), runs in sorted(by_key.items(), key=lambda kv: paper_order(kv[0])):
        if method == base or (base, benchmark) not in by_key:
            continue
        base_scores = by_key[(base, benchmark)][0]
        shared = sorted(set(base_scores).intersection(*runs))
        if len(shared) < 2:
            continue
        mine = np.mean([[run[i] for i in shared] for run in runs], axis=0)
        interval = item_difference(mine, [base_scores[i] for i in shared])
        rows.append(
            {
                "method": method,
                "benchmark": benchmark,
                "mean": interval.mean,
                "low": interval.low,
                "high": interval.high,
                "items": len(shared),
            }
        )
    return pd.DataFrame(rows)


def findings_section(findings: Sequence[Finding]) -> str:
    parts = []
    for number, finding in enumerate(findings, start=1):
        parts.append(f"**({number}) {finding.claim}: {finding.verdict.upper()}.**\n")
        parts += [f"- {line}" for line in finding.evidence]
        parts.append("")
    return "\n".join(parts)


def budget_section(budget: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    rows = [["model", options.get("model")], ["data source", options.get("source")]]
    rows += [[k, "all" if v is None else v] for k, v in budget.items()]
    return markdown_table(pd.DataFrame(rows, columns=["setting", "value"]))


def timing_section(table: pd.DataFrame) -> tuple[str, float]:
    runs = table.drop_duplicates("run")
    per_method = runs.groupby("method", sort=False)[["train_seconds", "eval_seconds"]].agg("mean")
    total = float(runs[["train_seconds", "eval_seconds"]].fillna(0).to_numpy().sum())
    frame = pd.DataFrame(
        [
            [m, f"{r.train_seconds:.0f}", f"{r.eval_seconds:.0f}"]
            for m, r in zip(per_method.index, per_method.itertuples(), strict=True)
        ],
        columns=["method", "train s / run (mean)", "eval s / run (mean)"],
    )
    return markdown_table(frame), total


def build_report(data: ReportInput, figures: Mapping[str, str], title: str) -> str:
    """The report's Markdown text (figures: caption -> relative link)."""
    table = data.table
    columns = column_order(table, data.options.get("benchmarks", ()))
    methods = [m for m in PAPER_METHODS if m in set(table["method"])]
    methods += sorted(set(table["method"]) - set(methods))
    result = paper_table(table, methods=methods, columns=columns)
    findings = paper_findings(result)
    timing, total_seconds = timing_section(table)
    seeds = sorted(set(table["seed"]))
    trained = dict.fromkeys([*data.options.get("benchmarks", ()), *table["train_benchmark"]])
    out = [f"# {title}", ""]
    out += [
        "Generated by `unisd replicate-report` from the runs' evaluation reports; every number "
        "below is computed by the analysis engine (`unisd_core.analysis.paper`).",
        "",
        "## What was run",
        "",
        f"Methods: {', '.join(methods)}. Training benchmarks: "
        f"{', '.join(trained)}; evaluation columns: "
        f"{', '.join(_heading(c) for c in columns)}. Seeds: {', '.join(map(str, seeds))} "
        f"({len(table['run'].unique())} evaluated runs).",
        "",
        budget_section(data.budget, data.options),
        "",
    ]
    if data.environment:
        out += ["Machine: " + "; ".join(f"{k} {v}" for k, v in data.environment.items()), ""]
    out += [
        f"Compute: {total_seconds / 3600:.2f} hours of training + evaluation in total "
        f"(sum over runs)"
        + (
            f"; {data.wall_seconds / 3600:.2f} hours of wall-clock time."
            if data.wall_seconds
            else "."
        ),
        "",
        timing,
        "",
    ]
    if data.command:
        out += ["Reproduce with:", "", "```", data.command, "```", ""]
    if data.notes.strip():
        out += ["## Notes from the people who ran it", "", data.notes.strip(), ""]
    out += [
        "## Scores",
        "",
        "Headline metric per benchmark (accuracy, or pass@1 for code) in percent: mean over seeds "
        "± the half-width of its 95% t interval across seeds. `overall` is the mean over the "
        "columns per seed.",
        "",
        scores_section(result),
        "",
        "## Gains over the base model",
        "",
        "Percentage points, paired across seeds, with the 95% interval.",
        "",
        gains_section(result),
        "",
        "## Retention (drift from the base distribution)",
        "",
        "Retention PPL: the base model's perplexity of each fine-tuned model's greedy outputs, "
        "averaged over the evaluation columns (lower = closer to the base distribution).",
        "",
        retention_section(result),
        "",
        "## How precise is the evaluation subset?",
        "",
        "Seed intervals above capture training noise only: every run is scored on the same "
        "fixed items. The item sample adds its own error:",
        "",
        precision_section(table, data.items),
        "",
        "## The paper's findings at this scale",
        "",
        "Verdicts use the paired 95% t interval across seeds: HOLDS when it excludes zero in the "
        "paper's direction, CONTRADICTED when it excludes zero the other way, UNRESOLVED "
        "otherwise.",
        "",
        findings_section(findings),
    ]
    if result.notes:
        out += ["Notes: " + " ".join(f"{n}." for n in result.notes), ""]
    if figures:
        out += ["## Figures", ""]
        out += [f"- [{caption}]({link})" for caption, link in figures.items()]
        out.append("")
    return "\n".join(out)


# ----------------------------------------------------------------------------- figures


def figures_for(result: PaperTable) -> dict[str, Any]:
    """Plotly figures: gains heatmap, retention/score Pareto view, forest plot of overall gains."""
    import plotly.graph_objects as go

    figures: dict[str, Any] = {}
    if not result.gains.empty:
        gains = result.gains
        methods = [m for m in result.methods if m in set(gains["config"])]
        z = [[_cell(gains, m, c) for c in result.columns] for m in methods]
        heat = go.Figure(
            go.Heatmap(
                z=z,
                x=[_heading(c) for c in result.columns],
                y=methods,
                colorscale="RdBu",
                zmid=0,
                text=[[_fmt(v / 100, sign=True) for v in row] for row in z],
                texttemplate="%{text}",
                colorbar={"title": "points"},
            )
        )
        heat.update_layout(
            title="Gain over the base model (points)",
            yaxis={"categoryorder": "array", "categoryarray": methods, "autorange": "reversed"},
        )
        figures["heatmap"] = heat

        overall = gains[
            gains["benchmark"] == (OVERALL if OVERALL in result.columns else result.columns[0])
        ]
        forest = go.Figure(
            go.Scatter(
                x=overall["gain"] * 100,
                y=overall["config"],
                mode="markers",
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (overall["ci_high"] - overall["gain"]) * 100,
                    "arrayminus": (overall["gain"] - overall["ci_low"]) * 100,
                },
            )
        )
        forest.add_vline(x=0, line_dash="dash")
        forest.update_layout(
            title="Overall gain over the base with 95% CI (points)",
            xaxis_title="gain (points)",
            yaxis={"categoryorder": "array", "categoryarray": methods, "autorange": "reversed"},
        )
        figures["forest"] = forest
    if not result.retention.empty:
        score = result.scores[result.scores["benchmark"] == result.columns[-1]].set_index("method")
        retention = result.retention.set_index("method")
        shared = [m for m in result.methods if m in score.index and m in retention.index]
        pareto = go.Figure(
            go.Scatter(
                x=[retention.loc[m, "mean"] for m in shared],
                y=[score.loc[m, "mean"] * 100 for m in shared],
                text=shared,
                mode="markers+text",
                textposition="top center",
            )
        )
        pareto.update_layout(
            title="Score vs drift: overall score against retention PPL",
            xaxis_title="retention PPL (lower = closer to base)",
            yaxis_title=f"{result.columns[-1]} score (%)",
        )
        figures["pareto"] = pareto
    return figures


def _cell(gains: pd.DataFrame, method: str, column: str) -> float:
    hit = gains[(gains["config"] == method) & (gains["benchmark"] == column)]
    return float(hit["gain"].iloc[0] * 100) if not hit.empty else float("nan")


def write_figures(result: PaperTable, folder: Path) -> tuple[dict[str, Path], list[str]]:
    """PNG files (HTML where PNG export is impossible here) and notes on what fell back."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    notes: list[str] = []
    for name, figure in figures_for(result).items():
        png = folder / f"{name}.png"
        try:
            figure.write_image(png, width=900, height=520, scale=2)
            written[name] = png
        except Exception as exc:  # kaleido missing, or no Chromium to drive
            html = folder / f"{name}.html"
            figure.write_html(html, include_plotlyjs="cdn")
            written[name] = html
            notes.append(
                f"{name}: PNG export unavailable ({type(exc).__name__}: {exc}); wrote HTML"
            )
    return written, notes
