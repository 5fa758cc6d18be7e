"""Tables, diffs, diagnostics and analysis views, from API-shaped data."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from frontend import views
from frontend.client import Evaluation, Point, Run
from frontend.ids import ElementIds


def make_run(run_id: int, **extra: Any) -> Run:
    config = extra.pop("config", {"agreement": {"enabled": True}, "ema": {"enabled": False}})
    return Run(
        id=run_id,
        status=extra.pop("status", "succeeded"),
        preset=extra.pop("preset", "gkd"),
        base_model="builtin:tiny-random",
        dataset="scienceqa",
        seed=extra.pop("seed", 0),
        config=config,
        created_at=datetime(2026, 11, 27, tzinfo=UTC),
        **extra,
    )


def test_runs_table_has_progress_eta_badges_and_metrics() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    running = make_run(
        1,
        status="running",
        progress=0.5,
        step=5,
        total_steps=10,
        started_at=now - timedelta(seconds=60),
        latest={"loss/total": 1.25},
        tags=["baseline"],
    )
    frame = views.runs_frame([running], now=now)
    row = frame.iloc[0]
    assert row["progress"].startswith("█████░░░░░ 50%") and "5/10" in row["progress"]
    assert row["ETA"] == "1m00s"
    assert row["components"] == "AGR" and row["loss"] == "1.25" and row["tags"] == "baseline"


def test_filters_and_ids() -> None:
    runs = [make_run(1, tags=["x"]), make_run(2, status="failed", config={}), make_run(3)]
    assert [r.id for r in views.filter_runs(runs, status="failed")] == [2]
    assert [r.id for r in views.filter_runs(runs, component="agreement")] == [1, 3]
    assert [r.id for r in views.filter_runs(runs, text="x")] == [1]
    assert views.parse_ids("3, 4;#5") == [3, 4, 5]
    assert views.parse_ids(["#3 gkd", "4", "#3"]) == [3, 4]


def test_config_diff_shows_only_differences() -> None:
    diff = views.config_diff(
        {
            "a": {"train": {"lr": 1e-5, "seed": 1}, "ema": {"enabled": True}},
            "b": {"train": {"lr": 1e-4, "seed": 1}, "ema": {"enabled": True}},
        }
    )
    assert list(diff.columns) == ["setting", "a", "b"]
    assert diff["setting"].tolist() == ["train.lr"]


def test_scores_table_has_diff_only_config_columns() -> None:
    runs = [
        make_run(1, config={"train": {"lr": 1e-5, "seed": 1}}),
        make_run(2, config={"train": {"lr": 1e-4, "seed": 1}}),
    ]
    evals = {1: [Evaluation(benchmark="scienceqa", metric="accuracy", value=0.5)]}
    frame = views.scores_frame(runs, evals)
    assert "train.lr" in frame.columns and "train.seed" not in frame.columns
    assert frame.loc[0, "scienceqa/accuracy"] == 0.5


def test_diagnostics_flag_a_component_without_effect() -> None:
    config = {"agreement": {"enabled": True}, "clipping": {"enabled": True}, "ema": {}}
    series = {
        "agreement/weight_mean": [1.0, 1.0],
        "agreement/weight_min": [1.0, 1.0],
        "clip/fraction_clipped": [0.0, 0.2],
    }
    found = {d.component: d.status for d in views.diagnostics(config, series)}
    assert found["agreement"] == "no effect"
    assert found["clipping"] == "active"
    assert found["ema"] == "off"
    assert views.diagnostics({"ema": {"enabled": True}}, {})[1].status == "no data"
    text = views.diagnostics_markdown(views.diagnostics(config, series))
    assert "switched on but without effect: agreement" in text


def timed(walls_s: list[float], values: list[float]) -> list[Point]:
    """A series logged at the given wall times (epoch seconds), one step each."""
    return [
        Point(step=step, value=value, wall_time=wall)
        for step, (wall, value) in enumerate(zip(walls_s, values, strict=True))
    ]


def test_comparison_curves_use_labels_and_minutes_since_each_runs_first_step() -> None:
    runs = [make_run(1), make_run(2, seed=1)]
    points = {
        # Run 2 started an hour after run 1: on the time axis both start at zero.
        1: timed([1000.0, 1060.0, 1150.0], [2.0, 1.0, 0.5]),
        2: timed([4600.0, 4630.0], [2.5, 1.5]),
    }
    curves, x_title, note = views.comparison_curves(runs, points, axis="time")
    assert x_title == views.TIME_AXIS_TITLE == "minutes since the run's first step"
    assert curves[0].points == [(0.0, 2.0), (1.0, 1.0), (2.5, 0.5)]
    assert curves[1].points == [(0.0, 2.5), (0.5, 1.5)] and note == ""
    assert curves[0].group == curves[1].group  # same config, different seed
    on_steps, step_title, step_note = views.comparison_curves(runs, points)
    assert step_title == "step" and step_note == ""
    assert on_steps[0].points == [(0, 2.0), (1, 1.0), (2, 0.5)]


def test_a_run_without_wall_times_puts_every_curve_on_the_step_axis_with_a_note() -> None:
    runs = [make_run(1), make_run(2, seed=1), make_run(3, seed=2)]
    points = {
        1: timed([100.0, 160.0], [2.0, 1.0]),
        2: [Point(step=1, value=2.5), Point(step=2, value=2.0)],  # an API without wall times
        3: [Point(step=1, value=2.5, wall_time=5.0), Point(step=2, value=2.0)],  # one missing
    }
    curves, x_title, note = views.comparison_curves(runs, points, axis="time")
    # One axis holds one unit: minutes and steps never share it.
    assert x_title == "step"
    assert [c.points for c in curves] == [
        [(0, 2.0), (1, 1.0)],
        [(1, 2.5), (2, 2.0)],
        [(1, 2.5), (2, 2.0)],
    ]
    assert "#2, #3" in note and "#1" not in note and "step" in note
    figure, figure_note = views.comparison_figure(runs, points, key="loss/total", axis="time")
    assert figure.layout.xaxis.title.text == "step" and figure_note == note
    # No points at all: nothing lacks a time, the axis is the one asked for.
    assert views.comparison_curves(runs, {}, axis="time") == ([], views.TIME_AXIS_TITLE, "")


def test_comparison_figure_x_is_minutes_since_each_runs_first_point() -> None:
    runs = [make_run(1), make_run(2, seed=1)]
    points = {
        1: timed([1000.0, 1030.0, 1120.0], [2.0, 1.5, 1.0]),
        2: timed([9000.0, 9060.0], [3.0, 2.0]),
    }
    figure, note = views.comparison_figure(runs, points, key="loss/total", axis="time")
    assert note == ""
    assert figure.layout.xaxis.title.text == "minutes since the run's first step"
    assert [list(t.x) for t in figure.data] == [[0.0, 0.5, 2.0], [0.0, 1.0]]
    assert [list(t.y) for t in figure.data] == [[2.0, 1.5, 1.0], [3.0, 2.0]]
    stepped, _ = views.comparison_figure(runs, points, key="loss/total")
    assert stepped.layout.xaxis.title.text == "step"
    assert list(stepped.data[0].x) == [0, 1, 2]


def test_time_axis_bands_interpolate_seeds_onto_a_common_grid() -> None:
    # Two seeds of one config, logged at different moments: no x value is shared.
    runs = [make_run(1), make_run(2, seed=1)]
    points = {
        1: timed([0.0, 60.0, 120.0], [4.0, 2.0, 0.0]),  # minutes 0, 1, 2
        2: timed([500.0, 530.0, 590.0], [6.0, 5.0, 3.0]),  # minutes 0, 0.5, 1.5
    }
    figure, _ = views.comparison_figure(runs, points, key="loss/total", axis="time", bands=True)
    band = next(t for t in figure.data if t.fill == "toself")
    mean = next(t for t in figure.data if t.name.endswith("(mean of 2)"))
    assert list(mean.x) == [0.0, 0.5, 1.0, 1.5, 2.0]
    # Seed 1 at 0.5 and 1.5 is interpolated (3.0, 1.0); seed 2 at 1.0 too (4.0); past its last
    # point (1.5 min) seed 2 is not extrapolated, so minute 2 is seed 1 alone.
    assert list(mean.y) == [5.0, 4.0, 3.0, 2.0, 0.0]
    half = 12.706 * math.sqrt(2.0) / math.sqrt(2)  # two seeds 2 apart: sd = sqrt(2)
    upper = list(band.y)[: len(mean.x)]
    assert all(math.isclose(u - m, half) for u, m in zip(upper[:4], mean.y[:4], strict=True))
    assert upper[4] == mean.y[4]  # one run: no interval


def test_compare_link_carries_the_time_axis() -> None:
    assert views.compare_link([3, 4]) == "?compare=3,4"
    assert views.compare_link([3, 4], "step") == "?compare=3,4"
    assert views.compare_link([3, 4], "time") == "?compare=3,4&axis=time"
    assert [views.parse_axis(v) for v in ("time", "step", None, "bogus")] == [
        "time",
        "step",
        "step",
        "step",
    ]


def test_analysis_view_reads_the_api_body() -> None:
    body = {
        "factors": ["agreement", "ema"],
        "responses": ["accuracy"],
        "effects": [
            {
                "response": "accuracy",
                "term": "agreement",
                "estimate": 0.1,
                "ci_low": 0.0,
                "ci_high": 0.2,
            }
        ],
        "comparisons": [{"config": "agreement", "mean_diff": 0.1, "t_pvalue_holm": 0.04}],
        "gains": [
            {"response": "accuracy", "config": "agreement", "benchmark": "scienceqa", "gain": 0.1}
        ],
        "frontier": [
            {
                "response": "accuracy",
                "config": "agreement",
                "accuracy": 0.6,
                "retention": 10.0,
                "pareto": True,
            }
        ],
        "table": [
            {"agreement": a, "ema": e, "seed": s, "accuracy": 0.5 + 0.1 * a + 0.05 * e}
            for a in (0, 1)
            for e in (0, 1)
            for s in (0, 1)
        ],
    }
    view = views.analysis_view(body)
    assert view.response == "accuracy" and len(view.effects) == 1
    assert view.gains == {"agreement": {"scienceqa": 0.1}}
    assert view.frontier[0]["optimal"] and len(view.cells) == 4
    assert not view.comparisons.empty


def test_element_ids_are_unique() -> None:
    ids = ElementIds()
    assert ids("runs", "table") == "runs-table"
    assert ids("field", "train.max_steps") == "field-train-max-steps"
    try:
        ids("runs", "table")
    except ValueError:
        pass
    else:
        raise AssertionError("duplicate id accepted")


def test_sweep_rows_gains_and_pareto() -> None:
    runs = []
    for index, (agreement, ema) in enumerate([(False, False), (True, False), (False, True)]):
        for seed in (0, 1):
            runs.append(
                make_run(
                    10 * index + seed,
                    seed=seed,
                    design_point={
                        "label": f"a{int(agreement)}e{int(ema)}",
                        "agreement": agreement,
                        "ema": ema,
                    },
                    latest={"retention/ppl": 10.0 - index},
                )
            )
    evaluations = [
        Evaluation(
            run_id=r.id, benchmark="scienceqa", metric="accuracy", value=0.5 + 0.1 * (r.id // 10)
        )
        for r in runs
    ]
    rows = views.sweep_table(runs, evaluations)
    assert rows[0]["label"] == "a0e0" and rows[0]["eval/scienceqa/accuracy"] == 0.5
    gains = views.gains_over_base(rows, ["agreement", "ema"])
    assert gains["a1e0"]["scienceqa"] == pytest.approx(0.1)
    assert gains["a0e1"]["scienceqa"] == pytest.approx(0.2)
    assert "a0e0" not in gains
    points = views.pareto_points(rows, "eval/scienceqa/accuracy", "retention/ppl")
    optimal = {p["label"] for p in points if p["optimal"]}
    assert optimal == {"a0e1"}  # best accuracy and lowest perplexity
    view = views.analysis_view(
        {
            "response": "eval/scienceqa/accuracy",
            "factors": ["agreement", "ema"],
            "effects": [],
            "paired": [{"config": "a1e0", "mean_diff": 0.1}],
            "note": "few seeds",
            "n_missing": 1,
        },
        None,
        rows,
    )
    assert view.gains and view.frontier and len(view.cells) == 3
    assert "few seeds" in view.notes and not view.comparisons.empty
