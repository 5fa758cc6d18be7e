"""Evaluations of one run, or of many runs for comparison tables."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.deps import PathId, SessionDep
from backend.evaluations import service
from backend.evaluations.schemas import EvaluationOut
from backend.metrics.service import parse_ids
from backend.runs.service import get_run

router = APIRouter(tags=["evaluations"])


@router.get("/runs/{run_id}/evaluations", response_model=list[EvaluationOut])
def run_evaluations(run_id: PathId, session: SessionDep) -> list[EvaluationOut]:
    get_run(session, run_id)
    return [EvaluationOut.model_validate(e) for e in service.for_runs(session, [run_id])]


@router.get("/evaluations", response_model=list[EvaluationOut])
def evaluations(
    session: SessionDep,
    run_ids: Annotated[str, Query(min_length=1, max_length=5000)],
    benchmark: Annotated[str | None, Query(max_length=64)] = None,
) -> list[EvaluationOut]:
    rows = service.for_runs(session, parse_ids(run_ids), benchmark=benchmark)
    return [EvaluationOut.model_validate(e) for e in rows]
