"""Runs, configs and metrics -> tables and short texts. Pure functions: tested without Gradio."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from frontend.client import Evaluation, Point, Run, RunEvent
from unisd_core.config import COMPONENTS

if TYPE_CHECKING:
    import plotly.graph_objects as go

BADGES = {
    "agreement": "AGR",
    "ema": "EMA",
    "contrastive": "CON",
    "feature_matching": "FEAT",
    "clipping": "CLIP",
}
RUN_COLUMNS = [
    "id",
    "name",
    "status",
    "progress",
    "ETA",
    "components",
    "loss",
    "score",
    "tags",
    "preset",
    "model",
    "benchmark",
    "seed",
    "created",
]
ACTIVE = ("queued", "running")


def progress_bar(fraction: float, width: int = 10) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled) + f" {fraction:.0%}"


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def eta_seconds(run: Run, now: datetime | None = None) -> float | None:
    """Remaining time: the API's ETA when it gives one, else linear in progress since start."""
    if run.status != "running":
        return None
    now = now or datetime.now(UTC)
    if run.eta_at is not None:
        eta = run.eta_at if run.eta_at.tzinfo else run.eta_at.replace(tzinfo=UTC)
        return max(0.0, (eta - now).total_seconds())
    if run.started_at is None or run.progress <= 0:
        return None
    started = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
    elapsed = (now - started).total_seconds()
    return elapsed * (1 - run.progress) / run.progress


def components_of(config: Mapping[str, Any]) -> list[str]:
    return [c for c in COMPONENTS if (config.get(c) or {}).get("enabled")]


def badges(config: Mapping[str, Any]) -> str:
    return " ".join(BADGES.get(c, c) for c in components_of(config)) or "-"


def key_metrics(run: Run) -> tuple[str, str]:
    """(last total loss, first eval score) from the run's latest metrics, when the API has them."""
    latest = run.latest or {}
    loss = latest.get("loss/total")
    scores = [v for k, v in sorted(latest.items()) if k.startswith("eval/")]
    return (
        "" if loss is None else f"{loss:.4g}",
        "" if not scores else f"{scores[0]:.3g}",
    )


def runs_frame(runs: Sequence[Run], now: datetime | None = None) -> pd.DataFrame:
    rows = []
    for run in runs:
        loss, score = key_metrics(run)
        status = run.status
        if run.status == "queued" and run.queue_position is not None:
            status = f"queued (#{run.queue_position})"
        rows.append(
            [
                run.id,
                run.name or "",
                status,
                progress_bar(run.progress)
                + (f" {run.step}/{run.total_steps}" if run.total_steps else ""),
                format_duration(eta_seconds(run, now)),
                badges(run.config),
                loss,
                score,
                ", ".join(run.tags),
                run.preset or "",
                run.base_model,
                run.dataset,
                run.seed,
                run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            ]
        )
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def filter_runs(
    runs: Sequence[Run],
    *,
    status: str = "",
    preset: str = "",
    text: str = "",
    component: str = "",
) -> list[Run]:
    """Client-side filters (the API filters by status; the rest narrows what it returned)."""
    needle = text.strip().lower()
    chosen = []
    for run in runs:
        if status and run.status != status:
            continue
        if preset and run.preset != preset:
            continue
        if component and component not in components_of(run.config):
            continue
        haystack = " ".join([str(run.id), run.name or "", run.base_model, *run.tags]).lower()
        if needle and needle not in haystack:
            continue
        chosen.append(run)
    return chosen


def run_label(run: Run) -> str:
    """How a run is named in legends: id, name or preset, components, seed."""
    base = run.name or run.preset or "custom"
    return f"#{run.id} {base} [{badges(run.config)}] s{run.seed}"


def config_label(run: Run) -> str:
    """The configuration without the seed (runs that differ only by seed share it)."""
    return f"{run.name or run.preset or 'custom'} [{badges(run.config)}]"


def parse_ids(text: str | Sequence[Any] | None) -> list[int]:
    """'3, 4' or ['#3 sft', 4] -> [3, 4]."""
    if text is None:
        return []
    parts = text.replace(";", ",").split(",") if isinstance(text, str) else list(text)
    ids = []
    for part in parts:
        token = str(part).strip().lstrip("#").split(" ", 1)[0]
        if token.isdigit() and int(token) not in ids:
            ids.append(int(token))
    return ids


# --- configs -----------------------------------------------------------------------------------


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{path}."))
        elif isinstance(value, list | tuple):
            flat[path] = ", ".join(str(v) for v in value)
        else:
            flat[path] = value
    return flat


def config_diff(configs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Only the settings that differ: one row per config path, one column per configuration."""
    flats = {label: flatten(config) for label, config in configs.items()}
    paths = sorted({p for flat in flats.values() for p in flat})
    differing = [p for p in paths if len({repr(f.get(p)) for f in flats.values()}) > 1]
    return pd.DataFrame(
        [[path, *(flats[label].get(path, "") for label in flats)] for path in differing],
        columns=["setting", *flats],
    )


def diff_columns(runs: Sequence[Run]) -> list[str]:
    """Config paths that differ between runs, ignoring the display name."""
    flats = [flatten(run.config) for run in runs]
    paths = sorted({p for flat in flats for p in flat})
    return [p for p in paths if p != "name" and len({repr(f.get(p)) for f in flats}) > 1]


def scores_frame(
    runs: Sequence[Run], evaluations: Mapping[int, Sequence[Evaluation]]
) -> pd.DataFrame:
    """Final scores per benchmark with the config columns that differ between the runs."""
    differing = diff_columns(runs)
    rows = []
    for run in runs:
        flat = flatten(run.config)
        row: dict[str, Any] = {"run": run_label(run), "status": run.status}
        row.update({p: flat.get(p, "") for p in differing})
        for ev in evaluations.get(run.id, []):
            row[f"{ev.benchmark}/{ev.metric}"] = round(ev.value, 4)
        rows.append(row)
    return pd.DataFrame(rows)


def scores_by_config(
    runs: Sequence[Run], evaluations: Mapping[int, Sequence[Evaluation]]
) -> dict[str, dict[str, float]]:
    """Mean score per benchmark (first metric of each) for each configuration label."""
    collected: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        label = config_label(run)
        seen: set[str] = set()
        for ev in evaluations.get(run.id, []):
            if ev.benchmark in seen:
                continue
            seen.add(ev.benchmark)
            collected.setdefault(label, {}).setdefault(ev.benchmark, []).append(ev.value)
    return {label: {b: sum(v) / len(v) for b, v in per.items()} for label, per in collected.items()}


def evaluations_frame(evaluations: Sequence[Evaluation]) -> pd.DataFrame:
    return pd.DataFrame(
        [[e.benchmark, e.metric, round(e.value, 4), e.n] for e in evaluations],
        columns=["benchmark", "metric", "value", "n"],
    )


def events_text(events: Sequence[RunEvent]) -> str:
    lines = []
    for event in events:
        stamp = event.time.strftime("%H:%M:%S") if event.time else "--:--:--"
        lines.append(f"{stamp} {event.level.upper():7s} {event.message}")
    return "\n".join(lines)


def records(frame: Any) -> list[dict[str, Any]]:
    """Rows of an API table (a list of dicts, or {'columns', 'data'}) as dicts."""
    if isinstance(frame, list):
        return [dict(r) for r in frame if isinstance(r, Mapping)]
    if isinstance(frame, Mapping) and "columns" in frame and "data" in frame:
        return [dict(zip(frame["columns"], row, strict=False)) for row in frame["data"]]
    return []


# --- component diagnostics ---------------------------------------------------------------------

#: For each component: the metric that shows it acting, and when that metric means "no effect".
_DIAGNOSTIC_RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "agreement": (
        ("agreement/weight_min", "agreement/weight_mean", "agreement/disagreement"),
        "every agreement weight is 1: the auxiliary contexts never disagreed",
    ),
    "ema": (("ema/teacher_drift",), "the EMA teacher never moved (drift 0)"),
    "contrastive": (
        ("contrastive/loss", "contrastive/violation_rate"),
        "the contrastive hinge was never active (loss and violations 0)",
    ),
    "feature_matching": (("features/mse",), "the feature-matching MSE is 0 throughout"),
    "clipping": (("clip/fraction_clipped",), "nothing was clipped (fraction clipped 0)"),
}
_EPS = 1e-9


@dataclass(frozen=True)
class Diagnostic:
    component: str
    enabled: bool
    status: str  # off | active | no effect | no data
    detail: str


def _no_effect(component: str, series: Mapping[str, Sequence[float]]) -> bool:
    if component == "agreement":
        weights = list(series.get("agreement/weight_min", [])) + list(
            series.get("agreement/weight_mean", [])
        )
        if weights:
            return all(abs(w - 1.0) < 1e-6 for w in weights)
        return all(abs(v) < _EPS for v in series.get("agreement/disagreement", [0.0]))
    keys = _DIAGNOSTIC_RULES[component][0]
    values = [v for k in keys for v in series.get(k, [])]
    return all(abs(v) < _EPS for v in values)


def diagnostics(
    config: Mapping[str, Any], series: Mapping[str, Sequence[float]]
) -> list[Diagnostic]:
    """Per component: is it on, and did it do anything (from its diagnostic metrics)?"""
    found = []
    for component in COMPONENTS:
        enabled = bool((config.get(component) or {}).get("enabled"))
        keys, why = _DIAGNOSTIC_RULES[component]
        present = {k: list(series[k]) for k in keys if series.get(k)}
        summary = ", ".join(
            f"{k.split('/', 1)[1]} {min(v):.3g}..{max(v):.3g}" for k, v in present.items()
        )
        if not enabled:
            found.append(Diagnostic(component, False, "off", summary))
        elif not present:
            found.append(Diagnostic(component, True, "no data", "no diagnostic metrics yet"))
        elif _no_effect(component, present):
            found.append(Diagnostic(component, True, "no effect", f"{why} ({summary})"))
        else:
            found.append(Diagnostic(component, True, "active", summary))
    return found


def diagnostics_markdown(found: Sequence[Diagnostic]) -> str:
    marks = {"off": "off", "active": "**active**", "no effect": "**NO EFFECT**", "no data": "..."}
    lines = ["| component | status | diagnostics |", "|---|---|---|"]
    for d in found:
        lines.append(f"| {d.component} | {marks[d.status]} | {d.detail} |")
    flagged = [d.component for d in found if d.status == "no effect"]
    if flagged:
        lines.append(f"\n**Warning:** switched on but without effect: {', '.join(flagged)}.")
    return "\n".join(lines)


def diagnostic_keys() -> list[str]:
    return [k for keys, _ in _DIAGNOSTIC_RULES.values() for k in keys]


# --- comparison --------------------------------------------------------------------------------


AXES = ("step", "time")
#: The time axis is per run: curves that started hours apart still start together at zero.
TIME_AXIS_TITLE = "minutes since the run's first step"


def parse_axis(value: str | None) -> str:
    """A link's or a control's `axis` value; anything unknown is the step axis."""
    return value if value in AXES else "step"


def compare_link(run_ids: Sequence[int], axis: str = "step") -> str:
    """The query string that reopens this comparison (the step axis is the default, left out)."""
    link = "?compare=" + ",".join(str(i) for i in run_ids)
    return link + "&axis=time" if parse_axis(axis) == "time" else link


def comparison_curves(
    runs: Sequence[Run],
    points: Mapping[int, Sequence[Point]],
    *,
    axis: str = "step",
    max_points: int = 500,
) -> tuple[list[Any], str, str]:
    """(curves, x-axis title, note): one curve per run, labelled by its configuration.

    On the time axis x is minutes since the run's first point of the series (each run from its
    own zero, to compare runs by cost). One axis holds one unit: if any run's points lack wall
    times (an API that does not send them), every curve falls back to the step and the note
    says which runs lacked them. Curves longer than `max_points` are reduced (extremes kept),
    whatever the server sent.
    """
    from frontend.plots import Curve, downsample

    present = [run for run in runs if points.get(run.id)]
    # (wall time, value) of each run whose every point has a time; one missing time spoils a run.
    timed: dict[int, list[tuple[float, float]]] = {}
    for run in present:
        pairs = [(p.wall_time, p.value) for p in points[run.id] if p.wall_time is not None]
        if len(pairs) == len(points[run.id]):
            timed[run.id] = pairs
    untimed = [run.id for run in present if run.id not in timed]
    on_time = parse_axis(axis) == "time" and not untimed
    curves = []
    for run in present:
        if on_time:
            start = timed[run.id][0][0]
            xy = [((wall - start) / 60.0, value) for wall, value in timed[run.id]]
        else:
            xy = [(p.step, p.value) for p in points[run.id]]
        curves.append(
            Curve(run.id, run_label(run), downsample(xy, max_points), group=config_label(run))
        )
    note = ""
    if parse_axis(axis) == "time" and untimed:
        named = ", ".join(f"#{i}" for i in untimed)
        note = f"x is the step: the API sent no wall times for {named}, so no time axis."
    return curves, TIME_AXIS_TITLE if on_time else "step", note


def comparison_figure(
    runs: Sequence[Run],
    points: Mapping[int, Sequence[Point]],
    *,
    key: str,
    axis: str = "step",
    smoothing: float = 0.0,
    bands: bool = False,
    log_y: bool = False,
) -> tuple[go.Figure, str]:
    """(figure, note) of the Compare tab's curves.

    Seeds never share a wall time, so on the time axis the mean +/- CI bands interpolate every
    seed onto a common grid first; on the step axis they average the steps the seeds share.
    """
    from frontend.plots import compare_curves

    curves, x_title, note = comparison_curves(runs, points, axis=axis)
    figure = compare_curves(
        curves,
        title=f"{key} across {len(runs)} runs",
        y_title=key,
        x_title=x_title,
        smoothing=smoothing,
        log_y=log_y,
        bands=bands,
        interpolate=x_title == TIME_AXIS_TITLE,
    )
    return figure, note


# --- analysis ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalysisView:
    """What the Analysis tab draws, pulled out of the API's analysis body."""

    effects: list[dict[str, Any]]
    comparisons: pd.DataFrame
    gains: dict[str, dict[str, float]]
    frontier: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    factors: list[str]
    response: str
    notes: list[str]


def _first(body: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if body.get(key) is not None:
            return body[key]
    return None


def interaction_cells(
    table: Sequence[Mapping[str, Any]], first: str, second: str, response: str
) -> list[dict[str, Any]]:
    """Mean response in each (first, second) level combination of a runs table."""
    frame = pd.DataFrame(list(table))
    if frame.empty or not {first, second, response} <= set(frame.columns):
        return []
    means = frame.groupby([first, second])[response].mean().reset_index(name="mean")
    return [dict(r) for r in means.to_dict("records")]


def analysis_view(
    body: Mapping[str, Any],
    response: str | None = None,
    rows: Sequence[Mapping[str, Any]] = (),
) -> AnalysisView:
    """The API's analysis body, plus (from the sweep's runs) gains, frontier and interactions."""
    effects = records(_first(body, "effects", "main_effects"))
    responses = [str(r) for r in _first(body, "responses") or []]
    if body.get("response"):
        responses.insert(0, str(body["response"]))
    response = response or (responses[0] if responses else "")
    if response and any("response" in e for e in effects):
        effects = [e for e in effects if str(e.get("response")) == response]
    comparisons = pd.DataFrame(records(_first(body, "paired", "comparisons", "paired_tests")))
    gains: dict[str, dict[str, float]] = {}
    for row in records(_first(body, "gains", "heatmap")):
        if response and "response" in row and str(row["response"]) != response:
            continue
        if "config" in row and "benchmark" in row and row.get("gain") is not None:
            gains.setdefault(str(row["config"]), {})[str(row["benchmark"])] = float(row["gain"])
    frontier = []
    retention = str(body.get("retention") or "retention")
    for row in records(_first(body, "frontier", "pareto")):
        if response and "response" in row and str(row["response"]) != response:
            continue
        accuracy = row.get(response) if response in row else row.get("accuracy")
        kept = row.get(retention, row.get("retention"))
        if accuracy is None or kept is None:
            continue
        label = row.get("config", row.get("label", ""))
        frontier.append(
            {
                "label": str(label),
                "accuracy": float(accuracy),
                "retention": float(kept),
                "optimal": bool(row.get("pareto")),
            }
        )
    factors = [str(f) for f in _first(body, "factors") or []]
    cells: list[dict[str, Any]] = []
    table = records(_first(body, "table", "runs")) or [dict(r) for r in rows]
    if len(factors) >= 2 and response:
        cells = interaction_cells(table, factors[0], factors[1], response)
    if not gains and rows:
        metric = response.rsplit("/", 1)[-1] if response.startswith("eval/") else "accuracy"
        gains = gains_over_base(rows, factors, metric)
    if not frontier and rows and response:
        keys = {k for r in rows for k in r}
        kept = next((k for k in sorted(keys) if "retention" in k or k.endswith("/ppl")), None)
        if kept:
            frontier = pareto_points(rows, response, kept)
    notes = [str(n) for n in body.get("notes") or []]
    if body.get("note"):
        notes.append(str(body["note"]))
    if body.get("n_missing"):
        notes.append(f"{body['n_missing']} run(s) have no value of the response yet.")
    return AnalysisView(effects, comparisons, gains, frontier, cells, factors, response, notes)


def sweep_table(runs: Sequence[Run], evaluations: Sequence[Evaluation]) -> list[dict[str, Any]]:
    """One row per run of an ablation: its design levels, seed and every evaluation score."""
    by_run: dict[int, list[Evaluation]] = {}
    for ev in evaluations:
        if ev.run_id is not None:
            by_run.setdefault(ev.run_id, []).append(ev)
    rows = []
    for run in runs:
        point = dict(run.design_point or {})
        label = str(point.pop("label", config_label(run)))
        row: dict[str, Any] = {"run": run.id, "label": label, "seed": run.seed, **point}
        for ev in by_run.get(run.id, []):
            row[f"eval/{ev.benchmark}/{ev.metric}"] = ev.value
        for key, value in (run.latest or {}).items():
            row.setdefault(key, value)
        rows.append(row)
    return rows


def _base_label(rows: Sequence[Mapping[str, Any]], factors: Sequence[str]) -> str | None:
    """The configuration with every factor at its lowest level (all components off)."""
    present = [f for f in factors if any(f in r for r in rows)]
    if not present:
        return None
    lowest = {f: min(r[f] for r in rows if f in r) for f in present}
    for row in rows:
        if all(row.get(f) == lowest[f] for f in present):
            return str(row["label"])
    return None


def gains_over_base(
    rows: Sequence[Mapping[str, Any]], factors: Sequence[str], metric: str = "accuracy"
) -> dict[str, dict[str, float]]:
    """Configuration x benchmark: mean score minus the base configuration's mean score."""
    frame = pd.DataFrame(list(rows))
    base = _base_label(rows, factors)
    columns = [c for c in frame.columns if c.startswith("eval/") and c.endswith(f"/{metric}")]
    if frame.empty or base is None or not columns:
        return {}
    means = frame.groupby("label")[columns].mean()
    gains: dict[str, dict[str, float]] = {}
    for label in means.index:
        if label == base:
            continue
        for column in columns:
            value = means.loc[label, column] - means.loc[base, column]
            if pd.notna(value):
                gains.setdefault(str(label), {})[column.split("/")[1]] = float(value)
    return gains


def pareto_points(
    rows: Sequence[Mapping[str, Any]], accuracy: str, retention: str
) -> list[dict[str, Any]]:
    """Mean accuracy (higher is better) and retention perplexity (lower is better) per config."""
    frame = pd.DataFrame(list(rows))
    if frame.empty or accuracy not in frame or retention not in frame:
        return []
    means = frame.groupby("label")[[accuracy, retention]].mean().dropna()
    scores = [
        (str(label), float(r[accuracy]), float(r[retention])) for label, r in means.iterrows()
    ]
    return [
        {
            "label": label,
            "accuracy": acc,
            "retention": ppl,
            "optimal": not any(
                a >= acc and p <= ppl and (a > acc or p < ppl) for _, a, p in scores
            ),
        }
        for label, acc, ppl in scores
    ]
