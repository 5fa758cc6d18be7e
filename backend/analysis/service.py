"""Analysis of a sweep or a set of runs: build the run table, call `unisd_core.analysis`."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.analysis.schemas import (
    AnalysisOut,
    CellScore,
    ConfigSummary,
    Effect,
    FindingOut,
    Gain,
    PaperTableOut,
    RetentionScore,
    TableRow,
)
from backend.db.models import COMPONENT_FLAGS, Evaluation, MetricLatest, Run, Sweep
from unisd_core import analysis, templates
from unisd_core.analysis import paper

DEFAULT_RESPONSE = "loss/total"


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def default_response(session: Session, run_ids: list[int]) -> str:
    rows = session.execute(
        select(Evaluation.benchmark, Evaluation.metric).where(Evaluation.run_id.in_(run_ids))
    ).all()
    if rows:
        (benchmark, metric), _ = Counter(tuple(r) for r in rows).most_common(1)[0]
        return f"eval/{benchmark}/{metric}"
    return DEFAULT_RESPONSE


def responses(session: Session, run_ids: list[int], response: str) -> dict[int, float]:
    """`run_id -> value`: an evaluation (`eval/<benchmark>/<metric>`) or a latest metric."""
    values: dict[int, float] = {}
    parts = response.split("/")
    if len(parts) == 3 and parts[0] == "eval":
        rows = session.execute(
            select(Evaluation.run_id, Evaluation.value)
            .where(
                Evaluation.run_id.in_(run_ids),
                Evaluation.benchmark == parts[1],
                Evaluation.metric == parts[2],
            )
            .order_by(Evaluation.split.desc())
        )
        for run_id, value in rows:
            values[run_id] = value
        if values:
            return values
    rows = session.execute(
        select(MetricLatest.run_id, MetricLatest.value).where(
            MetricLatest.run_id.in_(run_ids), MetricLatest.key == response
        )
    )
    return {run_id: value for run_id, value in rows}


def config_value(run: Run, factor: str) -> Any:
    if factor in COMPONENT_FLAGS:
        return bool(getattr(run, factor))
    node: Any = run.config
    for key in factor.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def analyse(
    session: Session,
    runs: list[Run],
    factors: list[str],
    response: str | None,
    *,
    labels: dict[int, str] | None = None,
    levels: dict[int, dict[str, Any]] | None = None,
) -> AnalysisOut:
    ids = [r.id for r in runs]
    response = response or default_response(session, ids)
    values = responses(session, ids, response)
    rows = []
    for run in runs:
        if run.id not in values or _finite(values[run.id]) is None:
            continue
        point = levels.get(run.id, {}) if levels else {}
        row = {f: point.get(f, config_value(run, f)) for f in factors}
        row["seed"] = run.seed
        row["response"] = values[run.id]
        row["config"] = (labels or {}).get(run.id) or "+".join(f"{f}={row[f]}" for f in factors)
        rows.append(row)
    out = AnalysisOut(
        response=response,
        factors=factors,
        n_runs=len(rows),
        n_missing=len(runs) - len(rows),
        effects=[],
        configs=[],
    )
    if not rows:
        out.note = f"no run has a value for {response!r} yet"
        return out
    table = pd.DataFrame(rows)
    summary = table.groupby("config", sort=False)["response"].agg(["count", "mean", "std"])
    out.configs = [
        ConfigSummary(
            label=str(label), n=int(r["count"]), mean=_finite(r["mean"]), sd=_finite(r["std"])
        )
        for label, r in summary.iterrows()
    ]
    try:
        effects = analysis.factorial_effects(
            table, factors=factors, response="response", seed="seed"
        )
        out.effects = [
            Effect(
                term=str(e["term"]),
                estimate=_finite(e["estimate"]),
                ci_low=_finite(e["ci_low"]),
                ci_high=_finite(e["ci_high"]),
                aliased_with=str(e["aliased_with"] or ""),
            )
            for e in effects.to_dict("records")
        ]
        out.note = effects.attrs.get("note") or None
    except (analysis.AnalysisError, ValueError, ZeroDivisionError) as exc:
        out.note = f"effects not estimable yet: {exc}"
    if "base" in set(table["config"]) and table["seed"].nunique() >= 2:
        try:
            paired = analysis.paired_comparisons(
                table, response="response", by="config", reference="base", seed="seed", n_boot=2000
            )
            out.paired = [
                {k: _json(v) for k, v in record.items()} for record in paired.to_dict("records")
            ]
        except (analysis.AnalysisError, ValueError, ZeroDivisionError):
            pass
    return out


def _json(value: Any) -> Any:
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | float):
        return _finite(value)
    try:
        return _finite(float(value))
    except (TypeError, ValueError):
        return str(value)


def sweep_analysis(session: Session, sweep: Sweep, response: str | None) -> AnalysisOut:
    if sweep.template is not None and response is None:
        return template_analysis(session, sweep)
    runs = list(
        session.scalars(
            select(Run).where(Run.sweep_id == sweep.id, Run.deleted_at.is_(None)).order_by(Run.id)
        )
    )
    factors = [str(f["name"]) for f in sweep.factors]
    labels = {r.id: str((r.design_point or {}).get("label", "")) for r in runs}
    levels = {r.id: dict(r.design_point or {}) for r in runs}
    return analyse(session, runs, factors, response, labels=labels, levels=levels)


def run_set_analysis(
    session: Session, run_ids: list[int], factors: list[str], response: str | None
) -> AnalysisOut:
    runs = list(
        session.scalars(
            select(Run).where(Run.id.in_(run_ids), Run.deleted_at.is_(None)).order_by(Run.id)
        )
    )
    return analyse(session, runs, factors, response)


# --------------------------------------------------------------------------- template sweeps

TABLE_METRICS = ("score", "retention_ppl", "gold_ppl")


def template_rows(session: Session, sweep: Sweep) -> list[TableRow]:
    """The sweep's evaluations, one row per run x evaluation benchmark (unevaluated runs: none)."""
    runs = {
        r.id: r
        for r in session.scalars(
            select(Run).where(Run.sweep_id == sweep.id, Run.deleted_at.is_(None))
        )
    }
    cells: dict[tuple[int, str], dict[str, Any]] = {}
    evaluations = session.scalars(
        select(Evaluation)
        .where(Evaluation.run_id.in_(list(runs)), Evaluation.metric.in_(TABLE_METRICS))
        .order_by(Evaluation.run_id, Evaluation.benchmark)
    )
    for evaluation in evaluations:
        run = runs[evaluation.run_id]
        point = run.design_point or {}
        cell = cells.setdefault(
            (run.id, evaluation.benchmark),
            {
                "run_id": run.id,
                "method": str(point.get("method", run.preset or "")),
                "train_benchmark": str(point.get("benchmark", "")),
                "benchmark": evaluation.benchmark,
                "seed": run.seed,
                "n": evaluation.n,
            },
        )
        cell[evaluation.metric] = _finite(evaluation.value)
    return [TableRow.model_validate({m: None for m in TABLE_METRICS} | c) for c in cells.values()]


def template_analysis(session: Session, sweep: Sweep) -> AnalysisOut:
    rows = template_rows(session, sweep)
    run_count = session.scalar(
        select(func.count(Run.id)).where(Run.sweep_id == sweep.id, Run.deleted_at.is_(None))
    )
    evaluated = len({r.run_id for r in rows})
    out = AnalysisOut(
        response="eval/<benchmark>/score",
        factors=["method", "benchmark"],
        n_runs=evaluated,
        n_missing=int(run_count or 0) - evaluated,
        effects=[],
        configs=[],
    )
    if not rows:
        out.note = "no run of this template has been evaluated yet"
        return out
    table = pd.DataFrame([r.model_dump() for r in rows])
    options = templates.PaperTableOptions.model_validate(sweep.template_options or {})
    try:
        out.paper_table = paper_table_out(table, options)
    except analysis.AnalysisError as exc:
        out.note = f"the table is not computable yet: {exc}"
    return out


def paper_table_out(table: pd.DataFrame, options: templates.PaperTableOptions) -> PaperTableOut:
    columns = []
    for trained in options.benchmarks:
        columns += [trained] + (
            [templates.OOD_EVALUATIONS[trained]] if trained in templates.OOD_EVALUATIONS else []
        )
    result = paper.paper_table(table, methods=options.methods, columns=columns)
    gains = result.gains
    return PaperTableOut(
        methods=result.methods,
        columns=result.columns,
        ood=[c for c in result.columns if c in templates.OOD_EVALUATIONS.values()],
        scores=[
            CellScore(
                method=r.method,
                benchmark=r.benchmark,
                mean=_finite(r.mean),
                ci_low=_finite(r.low),
                ci_high=_finite(r.high),
                n=int(r.n),
            )
            for r in result.scores.itertuples()
        ],
        gains=[
            Gain(
                method=str(g.config),
                benchmark=str(g.benchmark),
                gain=_finite(g.gain),
                ci_low=_finite(g.ci_low),
                ci_high=_finite(g.ci_high),
                n=int(g.n),
                interval=str(g.method),
            )
            for g in gains.itertuples()
        ]
        if not gains.empty
        else [],
        retention=[
            RetentionScore(
                method=r.method,
                mean=_finite(r.mean),
                ci_low=_finite(r.low),
                ci_high=_finite(r.high),
                n=int(r.n),
            )
            for r in result.retention.itertuples()
        ],
        findings=[
            FindingOut(claim=f.claim, verdict=f.verdict, evidence=f.evidence)
            for f in paper.paper_findings(result)
        ],
        notes=result.notes,
    )
