"""Sweeps: turn an ablation design into queued runs (one transaction), track and cancel them."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.auth.service import Principal
from backend.db.base import utcnow
from backend.db.models import FINISHED_STATUSES, Run, RunTag, Sweep
from backend.errors import AppError, NotFound
from backend.runs import service as runs
from backend.sweeps.schemas import (
    DesignPoint,
    FactorSpec,
    SweepCreate,
    SweepPreview,
    SweepProgress,
)
from unisd_core import analysis, templates
from unisd_core.config import RunConfig, deep_merge
from unisd_core.templates import PaperTableOptions

MAX_RUNS_PER_SWEEP = 2000
#: Seconds per optimizer step when no finished run of the model tells us better.
DEFAULT_STEP_SECONDS = {"builtin:tiny-random": 0.05, "builtin:smollm2-135m-instruct": 1.0}
FALLBACK_STEP_SECONDS = 5.0


class InvalidDesign(AppError):
    status_code = 422
    code = "validation_error"


@dataclass
class Planned:
    label: str
    levels: dict[str, Any]
    seed: int
    config: RunConfig


def _nested(path: str, value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    cursor = result
    keys = path.split(".")
    for key in keys[:-1]:
        cursor = cursor.setdefault(key, {})
    cursor[keys[-1]] = value
    return result


def design_points(
    body: SweepCreate,
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, list[str]]]:
    """The design's configurations as `(label, {factor: level})`, and its alias structure."""
    factors = body.factors
    names = [f.name for f in factors]
    two_level = all(len(f.values) == 2 for f in factors)
    try:
        if body.design == "fractional":
            if not two_level:
                raise InvalidDesign(
                    "fractional designs need exactly two levels per factor",
                    fields=[{"path": "factors", "message": "use two levels per factor"}],
                )
            design = analysis.fractional_factorial(names, resolution=body.resolution or 4)
            return _from_design(design, factors), _aliases(design)
        if body.design == "full" and two_level:
            design = analysis.full_factorial(names)
            return _from_design(design, factors), {}
    except analysis.AnalysisError as exc:
        raise InvalidDesign(str(exc), fields=[{"path": "factors", "message": str(exc)}]) from None
    if body.design == "full":
        points = []
        for combo in itertools.product(*(f.values for f in factors)):
            levels = dict(zip(names, combo, strict=True))
            points.append((_label(factors, levels), levels))
        return points, {}
    # one at a time: the base (first levels), then each factor at each other level alone
    base = {f.name: f.values[0] for f in factors}
    points = [("base", base)]
    for f in factors:
        for value in f.values[1:]:
            levels = {**base, f.name: value}
            points.append((_label(factors, levels), levels))
    return points, {}


def _label(factors: list[FactorSpec], levels: dict[str, Any]) -> str:
    parts = []
    for f in factors:
        value = levels[f.name]
        if f.levels is None:
            if value:
                parts.append(f.name)
        elif value != f.values[0]:
            parts.append(f"{f.name}={value}")
    return "+".join(parts) or "base"


def _from_design(
    design: analysis.Design, factors: list[FactorSpec]
) -> list[tuple[str, dict[str, Any]]]:
    points = []
    for _, row in design.configs.iterrows():
        levels = {f.name: f.values[1] if bool(row[f.name]) else f.values[0] for f in factors}
        points.append((_label(factors, levels), levels))
    return points


def _aliases(design: analysis.Design) -> dict[str, list[str]]:
    return {term: list(partners) for term, partners in design.aliases().items() if partners}


def plan(body: SweepCreate) -> tuple[list[Planned], dict[str, list[str]]]:
    """Every run of the sweep as a validated config; 422 naming the first bad one."""
    if body.template_options is not None:
        return _template_plan(body.template_options), {}
    points, aliases = design_points(body)
    seeds = body.seed_list
    if len(points) * len(seeds) > MAX_RUNS_PER_SWEEP:
        raise InvalidDesign(
            f"the design has {len(points) * len(seeds)} runs; at most {MAX_RUNS_PER_SWEEP}",
            fields=[{"path": "factors", "message": "too many runs"}],
        )
    base = deep_merge({"preset": body.base_preset}, body.base)
    by_path = {f.name: f.path for f in body.factors}
    planned = []
    for label, levels in points:
        raw = dict(base)
        for name, value in levels.items():
            raw = deep_merge(raw, _nested(by_path[name], value))
        for seed in seeds:
            seeded = deep_merge(raw, {"train": {"seed": seed}})
            seeded["name"] = f"{body.name or 'sweep'} {label} s{seed}"[:200]
            config = _validate(seeded, label)
            planned.append(Planned(label, levels, seed, config))
    return planned, aliases


def _template_plan(options: PaperTableOptions) -> list[Planned]:
    """The paper-table template: one run per method x training benchmark x seed."""
    planned = []
    for run in templates.paper_table(options):
        levels = {"method": run.method, "benchmark": run.benchmark}
        config = _validate(run.config, run.label, prefix="template_options.")
        planned.append(Planned(run.label, levels, run.seed, config))
    if len(planned) > MAX_RUNS_PER_SWEEP:
        raise InvalidDesign(
            f"the template has {len(planned)} runs; at most {MAX_RUNS_PER_SWEEP}",
            fields=[{"path": "template_options", "message": "too many runs"}],
        )
    return planned


def template_factors(options: PaperTableOptions) -> list[dict[str, Any]]:
    """A template's rows and columns, stored like factors so the UI can list them."""
    return [
        {"name": "method", "levels": list(options.methods)},
        {"name": "benchmark", "levels": list(options.benchmarks)},
    ]


def _validate(raw: dict[str, Any], label: str, prefix: str = "base.") -> RunConfig:
    try:
        return runs.build_config(raw, prefix=prefix)
    except runs.InvalidConfig as exc:
        raise InvalidDesign(
            f"design point {label!r} is not a valid config: {exc.message}", fields=exc.fields
        ) from None


def step_seconds(session: Session, base_model: str) -> tuple[float, str]:
    """Median seconds per step of this model's finished runs, else a default per model."""
    rows = session.execute(
        select(Run.started_at, Run.finished_at, Run.step)
        .where(
            Run.base_model == base_model,
            Run.status == "succeeded",
            Run.step > 0,
            Run.started_at.is_not(None),
            Run.finished_at.is_not(None),
        )
        .order_by(Run.id.desc())
        .limit(50)
    ).all()
    samples = [
        (finished - started).total_seconds() / step
        for started, finished, step in rows
        if started is not None and finished is not None and finished > started
    ]
    if samples:
        return statistics.median(samples), f"median of {len(samples)} finished runs of the model"
    default = DEFAULT_STEP_SECONDS.get(base_model, FALLBACK_STEP_SECONDS)
    return default, f"default {default} s/step for this model (no finished runs yet)"


def estimate(
    session: Session, planned: list[Planned], hours_per_run: float | None
) -> tuple[float, float, str]:
    """(total GPU-hours, hours per run, how it was estimated)."""
    if not planned:
        return 0.0, 0.0, "empty design"
    if hours_per_run is not None:
        total = sum(hours_per_run * _gpus(p.config) for p in planned)
        return total, hours_per_run, "hours_per_run given by the caller"
    seconds, basis = step_seconds(session, planned[0].config.model.name_or_path)
    hours = [(p.config.train.max_steps or 1000) * seconds / 3600 for p in planned]
    total = sum(h * _gpus(p.config) for h, p in zip(hours, planned, strict=True))
    return total, statistics.mean(hours), basis


def _gpus(config: RunConfig) -> int:
    return int(getattr(getattr(config, "resources", None), "gpus", 1) or 1)


def preview(session: Session, body: SweepCreate) -> SweepPreview:
    planned, aliases = plan(body)
    total, per_run, basis = estimate(session, planned, body.hours_per_run)
    seen: dict[str, dict[str, Any]] = {}
    for p in planned:
        seen.setdefault(p.label, p.levels)
    return SweepPreview(
        design=_design(body),
        resolution=(body.resolution or 4) if _design(body) == "fractional" else None,
        factors=[f.name for f in body.factors] or ["method", "benchmark"],
        seeds=body.seed_list,
        points=[DesignPoint(label=k, levels=v) for k, v in seen.items()],
        run_count=len(planned),
        estimated_gpu_hours=round(total, 4),
        hours_per_run=round(per_run, 6),
        estimate_basis=basis,
        aliases=aliases,
    )


def create(
    session: Session, principal: Principal, body: SweepCreate, *, default_queue: str
) -> tuple[Sweep, list[Run]]:
    """The sweep and all its queued runs, flushed in the caller's transaction (all or nothing)."""
    principal.require_write()
    if body.experiment_id is not None:
        runs.check_experiment(session, body.experiment_id)
    planned, aliases = plan(body)
    total, _, _ = estimate(session, planned, body.hours_per_run)
    preview_points = {p.label: p.levels for p in planned}
    options = body.template_options
    sweep = Sweep(
        name=body.name,
        experiment_id=body.experiment_id,
        created_by=principal.user_id,
        design=_design(body),
        template=body.template,
        template_options=options.model_dump(mode="json") if options is not None else None,
        resolution=(body.resolution or 4) if _design(body) == "fractional" else None,
        base_preset=body.base_preset,
        base_config=body.base,
        factors=(
            template_factors(options)
            if options is not None
            else [f.model_dump(mode="json") for f in body.factors]
        ),
        seeds=body.seed_list,
        design_table=[{"label": k, "levels": v} for k, v in preview_points.items()],
        aliases=[{"term": k, "aliased_with": v} for k, v in aliases.items()],
        run_count=len(planned),
        estimated_gpu_hours=total,
    )
    session.add(sweep)
    session.flush()
    created = []
    for p in planned:
        run = runs.run_from_config(p.config, default_queue=default_queue)
        run.sweep_id = sweep.id
        run.experiment_id = body.experiment_id
        run.created_by = principal.user_id
        run.design_point = {"label": p.label, **p.levels}
        run.tag_rows = [RunTag(tag=t) for t in body.tags]
        created.append(run)
    session.add_all(created)
    session.flush()
    return sweep, created


def _design(body: SweepCreate) -> str:
    return "template" if body.template is not None else body.design


def get(session: Session, sweep_id: int) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"sweep {sweep_id} does not exist")
    return sweep


def run_statuses(session: Session, sweep_ids: list[int]) -> dict[int, Counter[str]]:
    result: dict[int, Counter[str]] = {sid: Counter() for sid in sweep_ids}
    rows = session.execute(
        select(Run.sweep_id, Run.status, func.count(Run.id))
        .where(Run.sweep_id.in_(sweep_ids), Run.deleted_at.is_(None))
        .group_by(Run.sweep_id, Run.status)
    )
    for sweep_id, status, count in rows:
        if sweep_id is not None:
            result[sweep_id][status] = count
    return result


def progress(counts: Counter[str]) -> SweepProgress:
    total = sum(counts.values())
    done = sum(counts[s] for s in FINISHED_STATUSES)
    return SweepProgress(
        total=total,
        fraction_done=round(done / total, 6) if total else 1.0,
        **{s: counts[s] for s in ("queued", "running", "succeeded", "failed", "cancelled")},
    )


def status_of(sweep: Sweep, counts: Counter[str]) -> str:
    """Finishes when its runs do: running while any run is unfinished."""
    if counts["running"] or (counts["queued"] and counts["queued"] < sum(counts.values())):
        return "running"
    if counts["queued"]:
        return "queued"
    if sweep.cancelled_at is not None:
        return "cancelled"
    if counts["failed"]:
        return "failed"
    if counts["cancelled"] and not counts["succeeded"]:
        return "cancelled"
    return "succeeded"


def run_ids(session: Session, sweep_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Run.id)
            .where(Run.sweep_id == sweep_id, Run.deleted_at.is_(None))
            .order_by(Run.id)
        )
    )


def list_(
    session: Session, *, experiment_id: int | None, limit: int, offset: int
) -> tuple[list[Sweep], int]:
    where = [] if experiment_id is None else [Sweep.experiment_id == experiment_id]
    total = session.scalar(select(func.count(Sweep.id)).where(*where)) or 0
    rows = session.scalars(
        select(Sweep).where(*where).order_by(Sweep.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total


def cancel(session: Session, principal: Principal, sweep_id: int) -> Sweep:
    """Cancel every unfinished run (queued ones at once, running ones at their next step)."""
    sweep = get(session, sweep_id)
    principal.require_owner_or_admin(sweep.created_by, f"sweep {sweep_id}")
    sweep.cancelled_at = sweep.cancelled_at or utcnow()
    unfinished = session.scalars(
        select(Run).where(
            Run.sweep_id == sweep_id,
            Run.status.in_(("queued", "running")),
            Run.deleted_at.is_(None),
        )
    )
    now = utcnow()
    for run in unfinished:
        run.cancel_requested = True
        if run.status == "queued":
            run.status = "cancelled"
            run.finished_at = now
        runs.event(session, run, "warning", f"cancelled with sweep {sweep_id} by {principal.email}")
    session.flush()
    return sweep
