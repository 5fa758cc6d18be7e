"""Sweeps (ablation designs): preview, create (queues every run), list, get, cancel, analyse."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from backend.db.models import Sweep
from backend.deps import PathId, PrincipalDep, SessionDep, SettingsDep
from backend.queue import send_train_run
from backend.sweeps import service
from backend.sweeps.schemas import SweepCreate, SweepList, SweepOut, SweepPreview

router = APIRouter(prefix="/sweeps", tags=["sweeps"])


def sweep_out(session: Session, sweep: Sweep) -> SweepOut:
    counts = service.run_statuses(session, [sweep.id])[sweep.id]
    data = {
        column: getattr(sweep, column)
        for column in SweepOut.model_fields
        if column not in ("status", "progress", "run_ids")
    }
    return SweepOut(
        **data,
        status=service.status_of(sweep, counts),
        progress=service.progress(counts),
        run_ids=service.run_ids(session, sweep.id),
    )


@router.post("/preview", response_model=SweepPreview)
def preview(body: SweepCreate, session: SessionDep) -> SweepPreview:
    """The design, its run count and estimated GPU-hours, without creating anything."""
    return service.preview(session, body)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SweepOut)
def create(
    body: SweepCreate, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> SweepOut:
    """Create the sweep and queue all its runs in one transaction, then send the tasks."""
    sweep, runs = service.create(session, principal, body, default_queue=settings.default_queue)
    session.commit()
    for run in runs:
        if not send_train_run(settings, run.id, run.queue):
            break  # the broker is down: the runs stay queued in SQL for the reaper to re-send
    return sweep_out(session, sweep)


@router.get("", response_model=SweepList)
def list_sweeps(
    session: SessionDep,
    experiment_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> SweepList:
    sweeps, total = service.list_(session, experiment_id=experiment_id, limit=limit, offset=offset)
    return SweepList(
        items=[sweep_out(session, s) for s in sweeps], total=total, limit=limit, offset=offset
    )


@router.get("/{sweep_id}", response_model=SweepOut)
def get(sweep_id: PathId, session: SessionDep) -> SweepOut:
    return sweep_out(session, service.get(session, sweep_id))


@router.post("/{sweep_id}/cancel", response_model=SweepOut)
def cancel(sweep_id: PathId, principal: PrincipalDep, session: SessionDep) -> SweepOut:
    return sweep_out(session, service.cancel(session, principal, sweep_id))
