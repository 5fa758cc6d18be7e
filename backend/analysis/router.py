"""Analysis endpoints: factorial effects, per-configuration summaries, paired tests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.analysis import service
from backend.analysis.schemas import AnalysisOut, RunSetAnalysis, SweepTable
from backend.deps import PathId, SessionDep
from backend.sweeps.service import get as get_sweep

router = APIRouter(tags=["analysis"])

Response = Annotated[
    str | None,
    Query(max_length=300, description="eval/<benchmark>/<metric> or a metric key (latest value)."),
]


@router.get("/sweeps/{sweep_id}/analysis", response_model=AnalysisOut)
def sweep_analysis(sweep_id: PathId, session: SessionDep, response: Response = None) -> AnalysisOut:
    """Main effects and two-way interactions of the sweep's factors, with 95% intervals."""
    return service.sweep_analysis(session, get_sweep(session, sweep_id), response)


@router.get("/sweeps/{sweep_id}/table", response_model=SweepTable)
def sweep_table(sweep_id: PathId, session: SessionDep) -> SweepTable:
    """A template sweep's evaluations as rows (run x benchmark): what reports are built from."""
    sweep = get_sweep(session, sweep_id)
    return SweepTable(
        sweep_id=sweep.id,
        template=sweep.template,
        template_options=sweep.template_options,
        rows=service.template_rows(session, sweep),
    )


@router.post("/analysis/effects", response_model=AnalysisOut)
def run_set_effects(body: RunSetAnalysis, session: SessionDep) -> AnalysisOut:
    """The same analysis over any set of runs, with factors read from their configs."""
    return service.run_set_analysis(session, body.run_ids, body.factors, body.response)
