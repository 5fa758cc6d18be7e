"""Figures: data carried faithfully, CI bands, downsampling that keeps extremes, stable colours."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from frontend import plots
from frontend.plots import PALETTE, Curve


def test_curves_carry_the_data_and_distinct_colours() -> None:
    figure = plots.metric_curves(
        {"loss/total": [(1, 3.0), (2, 2.5)], "train/lr": [(1, 0.1)]}, title="t"
    )
    assert [trace.name for trace in figure.data] == ["loss/total", "train/lr"]
    assert list(figure.data[0].x) == [1, 2] and list(figure.data[0].y) == [3.0, 2.5]
    assert figure.data[0].line.color == PALETTE[0] != figure.data[1].line.color
    assert figure.layout.xaxis.title.text == "step" and figure.layout.title.text == "t"


def test_downsampling_keeps_extremes_and_ends() -> None:
    points = [(i, math.sin(i / 50)) for i in range(5000)]
    points[1234] = (1234, 99.0)
    points[4321] = (4321, -99.0)
    kept = plots.downsample(points, 400)
    assert len(kept) <= 400
    assert (1234, 99.0) in kept and (4321, -99.0) in kept
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert [x for x, _ in kept] == sorted(x for x, _ in kept)
    assert plots.downsample(points[:10], 400) == points[:10]


def test_mean_ci_matches_a_hand_computation() -> None:
    xs, mean, low, high = plots.mean_ci([[(1, 1.0), (2, 2.0)], [(1, 3.0), (2, 4.0)]])
    assert xs == [1, 2] and mean == [2.0, 3.0]
    half = 12.706 * math.sqrt(2.0) / math.sqrt(2)
    assert math.isclose(high[0] - mean[0], half) and math.isclose(mean[0] - low[0], half)


def test_interpolation_fills_gaps_never_extrapolates_and_keeps_a_repeated_xs_last_value() -> None:
    run = [(1.0, 10.0), (3.0, 30.0), (3.0, 33.0), (5.0, 13.0)]
    grid = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert plots.interpolate_onto(run, grid) == [
        (1.0, 10.0),
        (2.0, 21.5),
        (3.0, 33.0),
        (4.0, 23.0),
        (5.0, 13.0),
    ]
    assert plots.interpolate_onto([], grid) == []


def test_mean_ci_on_a_common_grid_averages_seeds_that_share_no_x() -> None:
    seeds = [[(0.0, 0.0), (2.0, 2.0)], [(1.0, 3.0), (3.0, 5.0)]]
    plain_x, plain_mean, _, _ = plots.mean_ci(seeds)
    assert plain_mean == [0.0, 3.0, 2.0, 5.0]  # each x has one seed: no average at all
    xs, mean, low, high = plots.mean_ci(seeds, interpolate=True)
    assert xs == plain_x == [0.0, 1.0, 2.0, 3.0]
    # Inside both ranges (x = 1, 2) both seeds count; at the tails only the seed that is there.
    assert mean == [0.0, 2.0, 3.0, 5.0]
    half = 12.706 * math.sqrt(2.0) / math.sqrt(2)  # values 1 and 3 (x=1), 2 and 4 (x=2)
    assert math.isclose(high[1] - mean[1], half) and math.isclose(mean[2] - low[2], half)
    assert low[0] == high[0] == 0.0 and low[3] == high[3] == 5.0


def test_compare_bands_group_seeds_and_lines_keep_run_colours() -> None:
    curves = [
        Curve(3, "#3 gkd s0", [(1, 1.0), (2, 0.5)], group="gkd"),
        Curve(4, "#4 gkd s1", [(1, 1.2), (2, 0.7)], group="gkd"),
        Curve(5, "#5 agree s0", [(1, 2.0), (2, 1.5)], group="agree"),
    ]
    banded = plots.compare_curves(curves, title="c", y_title="loss", bands=True)
    names = [t.name for t in banded.data]
    assert "gkd (mean of 2)" in names and "agree (mean of 1)" in names
    band = next(t for t in banded.data if t.fill == "toself")
    assert len(band.x) == 4  # upper then lower edge
    lines = plots.compare_curves(curves, title="c", y_title="loss", log_y=True)
    assert [t.line.color for t in lines.data] == [plots.colour(3), plots.colour(4), plots.colour(5)]
    assert lines.layout.yaxis.type == "log"
    assert list(lines.data[0].y) == [1.0, 0.5]


def test_smoothing_is_debiased_ema() -> None:
    assert plots.smooth([1.0, 1.0, 1.0], 0.9) == [1.0, 1.0, 1.0]
    assert plots.smooth([0.0, 10.0], 0.0) == [0.0, 10.0]
    smoothed = plots.smooth([0.0, 10.0], 0.5)
    assert 0.0 < smoothed[1] < 10.0


def test_analysis_figures() -> None:
    effects = [
        {"term": "agreement", "estimate": 0.05, "ci_low": 0.01, "ci_high": 0.09},
        {"term": "ema", "estimate": -0.01, "ci_low": -0.03, "ci_high": 0.02},
    ]
    forest = plots.forest_plot(effects)
    assert list(forest.data[0].y) == ["agreement", "ema"]
    assert list(forest.data[0].marker.color) == [PALETTE[3], PALETTE[0]]
    heat = plots.heatmap({"agree": {"gsm8k": 0.1, "mbpp": -0.2}}, title="h")
    assert heat.data[0].zmin == -0.2 and list(heat.data[0].x) == ["gsm8k", "mbpp"]
    pareto = plots.pareto_scatter(
        [
            {"label": "a", "retention": 1.0, "accuracy": 0.5, "optimal": True},
            {"label": "b", "retention": 2.0, "accuracy": 0.7, "optimal": True},
            {"label": "c", "retention": 0.5, "accuracy": 0.4, "optimal": False},
        ]
    )
    assert pareto.data[-1].name == "Pareto front" and len(pareto.data) == 4
    cells = [
        {"agreement": a, "ema": e, "mean": float(a) + 2 * float(e)}
        for a in (False, True)
        for e in (False, True)
    ]
    inter = plots.interaction_plot(cells, first="agreement", second="ema")
    assert len(inter.data) == 2 and inter.data[0].name == "ema = False"
    bars = plots.benchmark_bars({"gkd": {"gsm8k": 0.3}, "agree": {"gsm8k": 0.4}})
    assert [t.name for t in bars.data] == ["gkd", "agree"]


def test_heatmap_keeps_a_given_column_order_and_forest_rows_without_interval() -> None:
    heat = plots.heatmap(
        {"sft": {"overall": 1.0, "scienceqa": 2.0}, "opsd": {"scienceqa": -1.0}},
        title="h",
        columns=["scienceqa", "gpqa (OOD)", "overall"],
        text_format="+.1f",
    )
    assert list(heat.data[0].x) == ["scienceqa", "overall"]
    assert list(heat.data[0].text[0]) == ["+2.0", "+1.0"] and heat.data[0].text[1][1] == ""
    forest = plots.forest_plot(
        [
            {"term": "a", "estimate": 2.0, "ci_low": None, "ci_high": None},
            {"term": "b", "estimate": 2.0, "ci_low": 1.0, "ci_high": 3.0},
        ],
        x_title="gain (pp)",
    )
    # one seed: no whisker and not marked significant, however far from zero
    assert list(forest.data[0].marker.color) == [PALETTE[0], PALETTE[3]]
    assert list(forest.data[0].error_x.array) == [0.0, 1.0]
    assert forest.layout.xaxis.title.text == "gain (pp)"


def test_bars_with_ci() -> None:
    bars = plots.bar_with_ci(
        [
            {"method": "base", "mean": 1.2, "ci_low": None, "ci_high": None},
            {"method": "sft", "mean": 2.5, "ci_low": 2.0, "ci_high": 3.5},
        ],
        title="r",
        y_title="retention PPL",
    )
    assert list(bars.data[0].x) == ["base", "sft"] and list(bars.data[0].y) == [1.2, 2.5]
    assert list(bars.data[0].error_y.array) == [0.0, 1.0]
    assert list(bars.data[0].error_y.arrayminus) == [0.0, 0.5]


def test_figures_export_as_png_through_kaleido_and_html(tmp_path: Path) -> None:
    figures = {
        "bars": plots.benchmark_bars({"gkd": {"gsm8k": 0.3}}),
        "heat": plots.heatmap({"a": {"b": 0.1}}, title="h"),
        "missing": None,
    }
    files, note = plots.write_figures(figures, tmp_path)
    assert note == ""
    assert sorted(p.name for p in files) == ["bars.html", "bars.png", "heat.html", "heat.png"]
    for name in ("bars.png", "heat.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failed_png_export_falls_back_to_html_and_says_so(tmp_path: Path) -> None:
    def broken(figures: list[Any], paths: list[Path]) -> None:
        paths[0].write_bytes(b"half")  # a partial file must not be offered
        raise ValueError("no Chromium")

    files, note = plots.write_figures({"bars": plots.benchmark_bars({})}, tmp_path, png=broken)
    assert [p.name for p in files] == ["bars.html"] and not (tmp_path / "bars.png").exists()
    assert note == "PNG export failed (ValueError: no Chromium); the figures are exported as HTML."
