"""HTTP routes for runs: thin wiring over `backend.runs.service`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from backend.db.models import RUN_STATUSES
from backend.deps import SessionDep, SettingsDep
from backend.queue import send_train_run
from backend.runs import service
from backend.runs.schemas import MetricPointOut, RunList, RunMetrics, RunOut
from unisd_core.config import RunConfig

router = APIRouter(prefix="/runs", tags=["runs"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RunOut)
def create_run(config: RunConfig, session: SessionDep, settings: SettingsDep) -> RunOut:
    run = service.create_run(session, config, queue=settings.default_queue)
    session.commit()  # the worker must find the row before the task arrives
    send_train_run(settings, run.id, run.queue)
    return RunOut.model_validate(run)


@router.get("", response_model=RunList)
def list_runs(
    session: SessionDep,
    status_filter: Annotated[
        str | None, Query(alias="status", pattern="|".join(RUN_STATUSES))
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> RunList:
    runs, total = service.list_runs(session, status=status_filter, limit=limit, offset=offset)
    return RunList(
        items=[RunOut.model_validate(r) for r in runs], total=total, limit=limit, offset=offset
    )


@router.get("/{run_id}", response_model=RunOut)
def get_run(run_id: int, session: SessionDep) -> RunOut:
    return RunOut.model_validate(service.get_run(session, run_id))


@router.post("/{run_id}/cancel", response_model=RunOut)
def cancel_run(run_id: int, session: SessionDep) -> RunOut:
    return RunOut.model_validate(service.cancel_run(session, run_id))


@router.get("/{run_id}/metrics", response_model=RunMetrics)
def get_metrics(
    run_id: int,
    session: SessionDep,
    keys: Annotated[str, Query(description="Comma-separated metric keys; empty: all.")] = "",
) -> RunMetrics:
    wanted = [k.strip() for k in keys.split(",") if k.strip()]
    series = service.run_metrics(session, run_id, wanted)
    return RunMetrics(
        run_id=run_id,
        metrics={k: [MetricPointOut(step=s, value=v) for s, v in pts] for k, pts in series.items()},
    )
