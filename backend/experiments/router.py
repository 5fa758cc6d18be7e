"""Experiments: shared, named groups of runs with members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from backend.deps import PathId, PrincipalDep, SessionDep
from backend.experiments import service
from backend.experiments.schemas import (
    ExperimentCreate,
    ExperimentList,
    ExperimentOut,
    ExperimentUpdate,
    MemberIn,
    MemberOut,
)

router = APIRouter(prefix="/experiments", tags=["experiments"])


def out(experiment: object, run_count: int) -> ExperimentOut:
    result = ExperimentOut.model_validate(experiment)
    result.run_count = run_count
    return result


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ExperimentOut)
def create(body: ExperimentCreate, principal: PrincipalDep, session: SessionDep) -> ExperimentOut:
    return out(service.create(session, principal, body.name, body.description), 0)


@router.get("", response_model=ExperimentList)
def list_experiments(
    session: SessionDep,
    include_archived: bool = False,
    q: Annotated[str | None, Query(max_length=200)] = None,
    member: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="A user id.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> ExperimentList:
    rows, total = service.list_(
        session, include_archived=include_archived, q=q, member=member, limit=limit, offset=offset
    )
    return ExperimentList(
        items=[out(e, n) for e, n in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{experiment_id}", response_model=ExperimentOut)
def get(experiment_id: PathId, session: SessionDep) -> ExperimentOut:
    experiment = service.get(session, experiment_id)
    return out(experiment, service.run_count(session, experiment_id))


@router.patch("/{experiment_id}", response_model=ExperimentOut)
def update(
    experiment_id: PathId, body: ExperimentUpdate, principal: PrincipalDep, session: SessionDep
) -> ExperimentOut:
    experiment = service.update(
        session, principal, experiment_id, name=body.name, description=body.description
    )
    return out(experiment, service.run_count(session, experiment_id))


@router.post("/{experiment_id}/archive", response_model=ExperimentOut)
def archive(experiment_id: PathId, principal: PrincipalDep, session: SessionDep) -> ExperimentOut:
    experiment = service.set_archived(session, principal, experiment_id, True)
    return out(experiment, service.run_count(session, experiment_id))


@router.post("/{experiment_id}/unarchive", response_model=ExperimentOut)
def unarchive(experiment_id: PathId, principal: PrincipalDep, session: SessionDep) -> ExperimentOut:
    experiment = service.set_archived(session, principal, experiment_id, False)
    return out(experiment, service.run_count(session, experiment_id))


@router.get("/{experiment_id}/members", response_model=list[MemberOut])
def members(experiment_id: PathId, session: SessionDep) -> list[MemberOut]:
    return [MemberOut.model_validate(m) for m in service.members(session, experiment_id)]


@router.put("/{experiment_id}/members/{user_id}", response_model=MemberOut)
def set_member(
    experiment_id: PathId,
    user_id: PathId,
    body: MemberIn,
    principal: PrincipalDep,
    session: SessionDep,
) -> MemberOut:
    member = service.set_member(session, principal, experiment_id, user_id, body.role)
    return MemberOut.model_validate(member)


@router.delete("/{experiment_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(
    experiment_id: PathId, user_id: PathId, principal: PrincipalDep, session: SessionDep
) -> Response:
    service.remove_member(session, principal, experiment_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
