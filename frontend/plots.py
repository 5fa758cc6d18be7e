"""Data -> plotly figures. Pure functions: tested without a browser.

Conventions for every figure: a title, axis titles with units, legends that name the configuration,
the Okabe-Ito palette (safe for common colour-vision deficiencies), and one colour per run id, so a
run looks the same in every figure.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
#: Diverging, colour-blind safe scale for gains (negative purple, positive orange).
DIVERGING = "PuOr_r"
# Two-sided 95% t quantiles for 1..30 degrees of freedom (normal beyond).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip

XY = Sequence[tuple[float, float]]


def colour(index: int) -> str:
    """The colour of a run (by id) or a configuration (by position); stable across figures."""
    return PALETTE[index % len(PALETTE)]


def dash(index: int) -> str:
    """Line style that tells apart runs sharing a colour (beyond eight of them)."""
    return DASHES[(index // len(PALETTE)) % len(DASHES)]


def t_quantile(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


def _layout(figure: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    figure.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        showlegend=True,
        height=380,
    )
    return figure


# --- series helpers ----------------------------------------------------------------------------


def downsample(points: XY, max_points: int) -> list[tuple[float, float]]:
    """At most ~max_points points; each bucket keeps its first, min, max and last point.

    Extremes survive, so spikes in a loss curve stay visible after reduction.
    """
    points = list(points)
    if max_points <= 0 or len(points) <= max_points:
        return points
    buckets = max(1, max_points // 4)
    size = math.ceil(len(points) / buckets)
    kept: list[tuple[float, float]] = []
    for start in range(0, len(points), size):
        chunk = points[start : start + size]
        picks = {
            0,
            len(chunk) - 1,
            min(range(len(chunk)), key=lambda i: chunk[i][1]),
            max(range(len(chunk)), key=lambda i: chunk[i][1]),
        }
        kept.extend(chunk[i] for i in sorted(picks))
    return kept


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average with debiasing (TensorBoard style); weight 0 returns values."""
    if weight <= 0:
        return list(values)
    out: list[float] = []
    last, norm = 0.0, 0.0
    for value in values:
        last = weight * last + (1 - weight) * value
        norm = weight * norm + (1 - weight)
        out.append(last / norm)
    return out


def interpolate_onto(points: XY, grid: Sequence[float]) -> list[tuple[float, float]]:
    """The curve's value at each grid x inside its own x range: linear, never extrapolated.

    The same rule as `unisd_core.analysis.curves_mean_ci(interpolate=True)` (which the UI may not
    import): gaps between a run's own points are filled, its tails are left empty, and a repeated
    x keeps its last value (points logged in one batch without a clock share one wall time).
    """
    last: dict[float, float] = {}
    for x, y in points:
        last[x] = y
    xs = sorted(last)
    if not xs:
        return []
    out: list[tuple[float, float]] = []
    for x in grid:
        if x < xs[0] or x > xs[-1]:
            continue
        i = bisect.bisect_left(xs, x)
        if xs[i] == x:
            out.append((x, last[x]))
            continue
        x0, x1 = xs[i - 1], xs[i]
        y0, y1 = last[x0], last[x1]
        out.append((x, y0 + (y1 - y0) * (x - x0) / (x1 - x0)))
    return out


def mean_ci(
    runs: Sequence[XY], *, interpolate: bool = False
) -> tuple[list[float], list[float], list[float], list[float]]:
    """(x, mean, low, high) across seeds at each step; 95% t interval over the runs present.

    Downsampled curves need not share every step, so a step counts with whichever runs have it.
    With `interpolate` (a time axis, where seeds never share an x) every run is first
    interpolated onto the common grid of all runs' x values, inside its own range.
    """
    if interpolate:
        grid = sorted({x for points in runs for x, _ in points})
        runs = [interpolate_onto(points, grid) for points in runs]
    by_step: dict[float, list[float]] = {}
    for points in runs:
        for x, y in points:
            by_step.setdefault(x, []).append(y)
    xs, means, lows, highs = [], [], [], []
    for x in sorted(by_step):
        values = by_step[x]
        n = len(values)
        mean = sum(values) / n
        if n > 1:
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
            half = t_quantile(n - 1) * sd / math.sqrt(n)
        else:
            half = 0.0
        xs.append(x)
        means.append(mean)
        lows.append(mean - half)
        highs.append(mean + half)
    return xs, means, lows, highs


# --- curves ------------------------------------------------------------------------------------


def metric_curves(
    series: Mapping[str, XY], *, title: str, y_title: str = "value", x_title: str = "step"
) -> go.Figure:
    """One line per metric key of one run, x = optimizer step."""
    figure = go.Figure()
    for index, (key, points) in enumerate(series.items()):
        figure.add_trace(
            go.Scatter(
                x=[x for x, _ in points],
                y=[y for _, y in points],
                mode="lines+markers" if len(points) < 60 else "lines",
                name=key,
                line={"color": colour(index)},
            )
        )
    return _layout(figure, title, x_title, y_title)


@dataclass(frozen=True)
class Curve:
    """One run's series of one metric, labelled by its configuration."""

    run_id: int
    label: str
    points: XY
    group: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def compare_curves(
    curves: Sequence[Curve],
    *,
    title: str,
    y_title: str,
    x_title: str = "step",
    smoothing: float = 0.0,
    log_y: bool = False,
    bands: bool = False,
    interpolate: bool = False,
) -> go.Figure:
    """Overlaid curves; with `bands`, runs sharing a group become a mean line and a 95% CI band.

    `interpolate` aligns the runs of a band on a common x grid first (see `mean_ci`).
    """
    figure = go.Figure()
    if bands:
        groups: dict[str, list[Curve]] = {}
        for curve in curves:
            groups.setdefault(curve.group or curve.label, []).append(curve)
        for index, (name, members) in enumerate(groups.items()):
            xs, mean, low, high = mean_ci([m.points for m in members], interpolate=interpolate)
            mean, low, high = (
                smooth(mean, smoothing),
                smooth(low, smoothing),
                smooth(high, smoothing),
            )
            tint = colour(index)
            figure.add_trace(
                go.Scatter(
                    x=xs + xs[::-1],
                    y=high + low[::-1],
                    fill="toself",
                    fillcolor=_alpha(tint, 0.2),
                    line={"width": 0},
                    hoverinfo="skip",
                    name=f"{name} 95% CI",
                    legendgroup=name,
                    showlegend=False,
                )
            )
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=mean,
                    mode="lines",
                    name=f"{name} (mean of {len(members)})",
                    legendgroup=name,
                    line={"color": tint},
                )
            )
    else:
        for curve in curves:
            figure.add_trace(
                go.Scatter(
                    x=[x for x, _ in curve.points],
                    y=smooth([y for _, y in curve.points], smoothing),
                    mode="lines",
                    name=curve.label,
                    line={"color": colour(curve.run_id), "dash": dash(curve.run_id)},
                )
            )
    _layout(figure, title, x_title, y_title)
    if log_y:
        figure.update_yaxes(type="log")
    return figure


def _alpha(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


# --- scores and analysis -----------------------------------------------------------------------


def benchmark_bars(
    scores: Mapping[str, Mapping[str, float]], *, title: str = "Final score per benchmark"
) -> go.Figure:
    """Grouped bars: one group per benchmark, one bar per configuration."""
    figure = go.Figure()
    for index, (label, per_benchmark) in enumerate(scores.items()):
        figure.add_trace(
            go.Bar(
                x=list(per_benchmark),
                y=list(per_benchmark.values()),
                name=label,
                marker_color=colour(index),
            )
        )
    figure.update_layout(barmode="group")
    return _layout(figure, title, "benchmark", "score")


def forest_plot(
    effects: Sequence[Mapping[str, Any]],
    *,
    title: str = "Effects with 95% CI",
    unit: str = "",
    x_title: str | None = None,
    y_title: str = "term",
) -> go.Figure:
    """Horizontal points with CI whiskers, one row per term; zero marked."""
    rows = [e for e in effects if e.get("estimate") is not None]
    terms = [str(e.get("term", "")) for e in rows]
    estimates = [float(e["estimate"]) for e in rows]
    # A row without an interval (one seed) gets no whiskers and is never marked significant.
    bounded = [e.get("ci_low") is not None and e.get("ci_high") is not None for e in rows]
    lows = [float(e["ci_low"] if b else e["estimate"]) for e, b in zip(rows, bounded, strict=True)]
    highs = [
        float(e["ci_high"] if b else e["estimate"]) for e, b in zip(rows, bounded, strict=True)
    ]
    significant = [b and (lo > 0 or hi < 0) for b, lo, hi in zip(bounded, lows, highs, strict=True)]
    figure = go.Figure(
        go.Scatter(
            x=estimates,
            y=terms,
            mode="markers",
            marker={
                "color": [PALETTE[3] if s else PALETTE[0] for s in significant],
                "size": 10,
            },
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [h - e for h, e in zip(highs, estimates, strict=False)],
                "arrayminus": [e - lo for e, lo in zip(estimates, lows, strict=False)],
            },
            name="effect (red: CI excludes 0)",
        )
    )
    figure.add_vline(x=0, line_dash="dash", line_color="#777")
    x_title = x_title or f"effect on the response{f' ({unit})' if unit else ''}"
    _layout(figure, title, x_title, y_title)
    figure.update_yaxes(autorange="reversed")
    height = max(300, 40 * len(terms) + 120)
    # The legend sits under the x-axis title: a fixed pixel gap, as a fraction of the plot area
    # (the shared -0.2 put it on the title of a short plot).
    bottom = 110
    plot_area = height - 60 - bottom
    figure.update_layout(
        height=height,
        margin={"l": 60, "r": 20, "t": 60, "b": bottom},
        legend={"orientation": "h", "yanchor": "top", "y": -62 / plot_area},
    )
    return figure


def interaction_plot(
    cells: Sequence[Mapping[str, Any]], *, first: str, second: str, response: str = "mean"
) -> go.Figure:
    """Mean response vs the levels of `first`, one line per level of `second`."""
    figure = go.Figure()
    levels = sorted({str(c[second]) for c in cells})
    for index, level in enumerate(levels):
        points = sorted(
            (str(c[first]), float(c[response])) for c in cells if str(c[second]) == level
        )
        figure.add_trace(
            go.Scatter(
                x=[x for x, _ in points],
                y=[y for _, y in points],
                mode="lines+markers",
                name=f"{second} = {level}",
                line={"color": colour(index)},
            )
        )
    return _layout(figure, f"Interaction: {first} x {second}", first, response)


def heatmap(
    matrix: Mapping[str, Mapping[str, float]],
    *,
    title: str,
    colorbar: str = "gain",
    columns: Sequence[str] | None = None,
    text_format: str = "+.3f",
    x_title: str = "benchmark",
    y_title: str = "configuration",
) -> go.Figure:
    """Rows x columns of values (e.g. component x benchmark gains), centred on zero.

    Columns come in the given order (a table's own, e.g. `overall` last), else alphabetically;
    given columns that no row fills are dropped.
    """
    rows = list(matrix)
    present = {c for row in matrix.values() for c in row}
    columns = [c for c in columns if c in present] if columns is not None else sorted(present)
    z = [[matrix[r].get(c) for c in columns] for r in rows]
    finite = [abs(v) for row in z for v in row if v is not None]
    bound = max(finite) if finite else 1.0
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=columns,
            y=rows,
            colorscale=DIVERGING,
            zmin=-bound,
            zmax=bound,
            colorbar={"title": colorbar},
            text=[[format(v, text_format) if v is not None else "" for v in row] for row in z],
            texttemplate="%{text}",
        )
    )
    _layout(figure, title, x_title, y_title)
    figure.update_yaxes(autorange="reversed")  # first row on top, as in a table
    return figure


def pareto_scatter(
    points: Sequence[Mapping[str, Any]],
    *,
    x: str = "retention",
    y: str = "accuracy",
    title: str = "Retention vs accuracy",
) -> go.Figure:
    """One marker per configuration; the Pareto-optimal ones joined by a line."""
    figure = go.Figure()
    for index, point in enumerate(points):
        figure.add_trace(
            go.Scatter(
                x=[point[x]],
                y=[point[y]],
                mode="markers+text",
                text=[str(point.get("label", index))],
                textposition="top center",
                marker={
                    "color": colour(index),
                    "size": 12,
                    "symbol": "star" if point.get("optimal") else "circle",
                },
                name=str(point.get("label", index)),
            )
        )
    front = sorted((p[x], p[y]) for p in points if p.get("optimal"))
    if len(front) > 1:
        figure.add_trace(
            go.Scatter(
                x=[a for a, _ in front],
                y=[b for _, b in front],
                mode="lines",
                line={"color": "#777", "dash": "dot"},
                name="Pareto front",
            )
        )
    return _layout(figure, title, x, y)


def bar_with_ci(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str,
    y_title: str,
    x_title: str = "method",
    label: str = "method",
) -> go.Figure:
    """One bar per row (`mean`), with asymmetric 95% CI whiskers from `ci_low`/`ci_high`."""
    labels = [str(r[label]) for r in rows]
    means = [float(r["mean"]) for r in rows]
    # No interval (fewer than two seeds): no whisker.
    highs = [float(r["ci_high"] if r.get("ci_high") is not None else r["mean"]) for r in rows]
    lows = [float(r["ci_low"] if r.get("ci_low") is not None else r["mean"]) for r in rows]
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=means,
            marker_color=[colour(i) for i in range(len(rows))],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [h - m for h, m in zip(highs, means, strict=True)],
                "arrayminus": [m - lo for m, lo in zip(means, lows, strict=True)],
            },
            name=f"{y_title} (95% CI)",
        )
    )
    return _layout(figure, title, x_title, y_title)


# --- export ------------------------------------------------------------------------------------

PngWriter = Callable[[list[go.Figure], list[Path]], None]


def write_pngs(figures: list[go.Figure], paths: list[Path]) -> None:
    """PNG files through kaleido; one Chromium serves the whole batch (seconds per start)."""
    pio.write_images(figures, paths, format="png", scale=2)


def write_figures(
    figures: Mapping[str, go.Figure | None], folder: Path, png: PngWriter | None = write_pngs
) -> tuple[list[Path], str]:
    """(files, note): each figure as standalone HTML, and as PNG when `png` can write it.

    HTML needs nothing but plotly, so it is always written; PNG needs kaleido and a Chromium,
    and when those fail the note says why and the HTML files stand in for the images.
    """
    drawn = {stem: figure for stem, figure in figures.items() if figure is not None}
    written: list[Path] = []
    for stem, figure in drawn.items():
        path = folder / f"{stem}.html"
        figure.write_html(path, include_plotlyjs=True, full_html=True)
        written.append(path)
    if png is None or not drawn:
        return written, ""
    paths = [folder / f"{stem}.png" for stem in drawn]
    try:
        png(list(drawn.values()), paths)
    except Exception as exc:  # kaleido raises many kinds (no Chromium, timeouts, IPC errors)
        for path in paths:
            path.unlink(missing_ok=True)
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return written, (
            f"PNG export failed ({type(exc).__name__}{f': {reason}' if reason else ''}); "
            "the figures are exported as HTML."
        )
    return written + [p for p in paths if p.exists()], ""
